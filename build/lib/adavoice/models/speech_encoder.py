"""AdaSpeech 2 mel encoder: mel frames -> the frame-level hidden sequence the decoder consumes.

Trained after the base with the base frozen (`adavoice train mel-encoder`); it lets a voice be
adapted from untranscribed speech by auto-encoding it through mel encoder + decoder.

>>> encoder = SpeechEncoder(SpeechEncoderConfig.tiny()).eval()
>>> mel, mask = torch.randn(2, 80, 30), torch.ones(2, 30, dtype=torch.bool)
>>> tuple(encoder(mel, mask).shape)
(2, 30, 32)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from adavoice.artifacts import damaged, load_weights, read_artifact, write_artifact
from adavoice.config import JsonConfig
from adavoice.errors import ConfigError
from adavoice.nn.transformer import FFTStack

KIND = "adavoice-mel-encoder"


@dataclass(frozen=True)
class SpeechEncoderConfig(JsonConfig):
    """``hidden`` must equal the base model's hidden size."""

    n_mels: int = 80
    hidden: int = 128
    layers: int = 2
    heads: int = 2
    ffn_hidden: int = 512
    ffn_kernel: int = 5
    prenet_kernel: int = 5
    dropout: float = 0.1
    # True: the encoder predicts the decoder input less the speaker and utterance terms, which
    # are added back from the voice (see :func:`voice_frames`), so adapting on its output
    # trains the speaker vector through the same terms as text does. False: the output
    # carries the voice read from the audio itself (measured worse, BENCHMARKS.md).
    speaker_free: bool = True
    # True: each utterance's mel channels are standardised (masked mean and spread over time)
    # before the encoder sees them, taking off the long-term spectral envelope in which a
    # voice's timbre and the recording channel mostly live (instance normalisation, as in
    # voice-conversion content encoders).
    input_norm: bool = True

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError("hidden must be divisible by heads")

    @classmethod
    def tiny(cls, **kw) -> "SpeechEncoderConfig":
        return cls(**{"hidden": 32, "layers": 1, "ffn_hidden": 64, **kw})

    @classmethod
    def for_base(cls, acoustic_cfg, **kw) -> "SpeechEncoderConfig":
        """Sized to a base model: same hidden, heads, FFN and mel channels."""
        return cls(**{"n_mels": acoustic_cfg.n_mels, "hidden": acoustic_cfg.hidden,
                      "heads": acoustic_cfg.heads, "ffn_hidden": acoustic_cfg.ffn_hidden,
                      "ffn_kernel": acoustic_cfg.ffn_kernel, **kw})


def speaker_terms(model, speaker_vector, utterance_vector) -> torch.Tensor:
    """(B, hidden): what the base adds to every text position for a voice (speaker projection
    plus utterance vector); ``speaker_vector`` (B, speaker_dim), ``utterance_vector``
    (B, hidden) or None."""
    terms = model.speaker_to_hidden(speaker_vector)
    if model.utterance_encoder is not None and utterance_vector is not None:
        terms = terms + utterance_vector
    return terms


def voice_frames(encoder: "SpeechEncoder", model, frames, frame_mask, speaker_vector,
                 utterance_vector) -> torch.Tensor:
    """The decoder input for a mel encoder's ``frames`` (B, T, hidden) and a voice: a
    speaker-free encoder's frames get the voice's speaker terms added on real frames."""
    if not encoder.cfg.speaker_free:
        return frames
    terms = speaker_terms(model, speaker_vector, utterance_vector)
    return frames + terms.unsqueeze(1) * frame_mask.unsqueeze(-1).to(frames.dtype)


def standardise_channels(mel: torch.Tensor, frame_mask: torch.Tensor,
                         floor: float = 1e-2) -> torch.Tensor:
    """mel (B, C, T) with each utterance's channels brought to zero mean and unit spread over
    its real frames (``frame_mask`` (B, T)); padding frames come out zero."""
    keep = frame_mask.unsqueeze(1).to(mel.dtype)
    count = keep.sum(-1, keepdim=True).clamp(min=1.0)
    mean = (mel * keep).sum(-1, keepdim=True) / count
    spread = (((mel - mean) * keep) ** 2).sum(-1, keepdim=True).div(count).sqrt()
    return (mel - mean) / spread.clamp(min=floor) * keep


class SpeechEncoder(nn.Module):
    """forward(mel (B, n_mels, T) log-mel, frame_mask (B, T) bool) -> (B, T, hidden)."""

    def __init__(self, cfg: SpeechEncoderConfig):
        super().__init__()
        self.cfg = cfg
        pad = cfg.prenet_kernel // 2
        self.prenet = nn.Sequential(
            nn.Conv1d(cfg.n_mels, cfg.hidden, cfg.prenet_kernel, padding=pad), nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Conv1d(cfg.hidden, cfg.hidden, cfg.prenet_kernel, padding=pad),
        )
        self.encoder = FFTStack(cfg.layers, cfg.hidden, cfg.heads, cfg.ffn_hidden,
                                cfg.ffn_kernel, cfg.dropout)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, mel: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        keep = frame_mask.unsqueeze(-1).to(mel.dtype)
        if self.cfg.input_norm:
            mel = standardise_channels(mel, frame_mask)
        hidden = self.prenet(mel * keep.transpose(1, 2)).transpose(1, 2) * keep
        hidden = self.encoder(hidden, frame_mask)
        return self.out(hidden) * keep

    def save(self, folder: str | Path, training: dict | None = None, half: bool = False) -> Path:
        return write_artifact(folder, KIND, {"encoder": self.cfg.to_dict(),
                                             "training": training or {}},
                              self.state_dict(), half)

    @classmethod
    def from_dir(cls, folder: str | Path) -> "SpeechEncoder":
        """The encoder of a folder written by :meth:`save`; its ``training`` record is kept as
        ``encoder.provenance`` (the base it was trained on)."""
        config, state = read_artifact(folder, KIND, "mel encoder")
        with damaged(folder, "mel encoder"):
            encoder = cls(SpeechEncoderConfig.from_dict(config["encoder"]))
            encoder.provenance = dict(config.get("training", {}))
        return load_weights(encoder, state, folder)
