"""Speaker encoder: speechbrain's ECAPA-TDNN over the shared log-mel, trained here on the
multi-speaker corpus (`adavoice train speaker-encoder`). It gives speaker similarity for
evaluation and the starting speaker vector for adaptation.

>>> encoder = SpeakerEncoder(SpeakerEncoderConfig.tiny()).eval()
>>> mel = torch.randn(2, 80, 120)
>>> tuple(encoder.embed(mel).shape)
(2, 32)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from adavoice.artifacts import damaged, load_weights, read_artifact, write_artifact
from adavoice.config import JsonConfig, MelConfig
from adavoice.errors import ConfigError

KIND = "adavoice-speaker-encoder"


@dataclass(frozen=True)
class SpeakerEncoderConfig(JsonConfig):
    """ECAPA-TDNN sizes. ``crop_frames``: training crop length (mel frames)."""

    n_mels: int = 80
    channels: tuple = (128, 128, 128, 128, 384)
    embedding_dim: int = 128
    attention_channels: int = 64
    crop_frames: int = 160
    margin: float = 0.2
    scale: float = 30.0

    def __post_init__(self) -> None:
        if len(self.channels) != 5:
            raise ConfigError("ECAPA-TDNN takes exactly 5 channel sizes")
        if self.embedding_dim < 2 or self.crop_frames < 16:
            raise ConfigError("embedding_dim must be >= 2 and crop_frames >= 16")

    @classmethod
    def tiny(cls, **kw) -> "SpeakerEncoderConfig":
        return cls(channels=(32, 32, 32, 32, 96), embedding_dim=32, attention_channels=16, **kw)

    @classmethod
    def small(cls, **kw) -> "SpeakerEncoderConfig":
        return cls(**kw)

    @classmethod
    def preset(cls, name: str, **kw) -> "SpeakerEncoderConfig":
        if name not in ("tiny", "small"):
            raise ConfigError(f"unknown speaker-encoder preset {name!r}", fix="tiny | small")
        return getattr(cls, name)(**kw)


class SpeakerEncoder(nn.Module):
    """log-mel (B, n_mels, T) -> speaker embedding (B, embedding_dim).

    The mel is mean-normalised over time first, so level and channel offsets do not count as
    identity. ``embed`` returns unit vectors (cosine similarity is a dot product)."""

    def __init__(self, cfg: SpeakerEncoderConfig):
        super().__init__()
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

        self.cfg = cfg
        self.ecapa = ECAPA_TDNN(cfg.n_mels, channels=list(cfg.channels),
                                lin_neurons=cfg.embedding_dim,
                                attention_channels=cfg.attention_channels,
                                se_channels=cfg.attention_channels)

    def forward(self, mel: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        if frame_mask is None:
            frame_mask = torch.ones(mel.shape[0], mel.shape[-1], dtype=torch.bool,
                                    device=mel.device)
        keep = frame_mask.unsqueeze(1).to(mel.dtype)
        count = keep.sum(-1, keepdim=True).clamp(min=1.0)
        centred = (mel - (mel * keep).sum(-1, keepdim=True) / count) * keep
        relative = frame_mask.sum(1).to(mel.dtype) / mel.shape[-1]
        return self.ecapa(centred.transpose(1, 2), relative).squeeze(1)

    @torch.no_grad()
    def embed(self, mel: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        return nn.functional.normalize(self(mel, frame_mask), dim=-1)

    @torch.no_grad()
    def embed_many(self, mels: list[torch.Tensor]) -> torch.Tensor:
        """Mean of unit embeddings of several (n_mels, T) clips, renormalised -> (D,)."""
        vectors = torch.stack([self.embed(m.unsqueeze(0))[0] for m in mels])
        return nn.functional.normalize(vectors.mean(0), dim=0)

    # ---- I/O ----------------------------------------------------------------------------------
    def save(self, folder: str | Path, mel: MelConfig, training: dict | None = None,
             half: bool = False) -> Path:
        return write_artifact(folder, KIND, {"encoder": self.cfg.to_dict(),
                                                 "mel": mel.to_dict(), "training": training or {}},
                              self.state_dict(), half)

    @classmethod
    def from_dir(cls, folder: str | Path) -> tuple["SpeakerEncoder", MelConfig]:
        config, state = read_artifact(folder, KIND, "speaker encoder")
        with damaged(folder, "speaker encoder"):
            model = cls(SpeakerEncoderConfig.from_dict(config["encoder"]))
            mel = MelConfig.from_dict(config["mel"])
        return load_weights(model, state, folder), mel
