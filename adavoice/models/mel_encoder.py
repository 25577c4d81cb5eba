"""AdaSpeech 2 mel encoder: mel frames -> the frame-level hidden sequence the decoder consumes.

Trained after the base with the base frozen (`adavoice train mel-encoder`); it lets a voice be
adapted from untranscribed speech by auto-encoding it through mel encoder + decoder.

>>> encoder = MelEncoder(MelEncoderConfig.tiny()).eval()
>>> mel, mask = torch.randn(2, 80, 30), torch.ones(2, 30, dtype=torch.bool)
>>> tuple(encoder(mel, mask).shape)
(2, 30, 32)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from adavoice.config import JsonConfig, read_json
from adavoice.errors import ConfigError, MissingFileError, ModelFormatError
from adavoice.nn.fft import FFTStack

FORMAT_VERSION = 1
KIND = "adavoice-mel-encoder"


@dataclass(frozen=True)
class MelEncoderConfig(JsonConfig):
    """``hidden`` must equal the base model's hidden size."""

    n_mels: int = 80
    hidden: int = 128
    layers: int = 2
    heads: int = 2
    ffn_hidden: int = 512
    ffn_kernel: int = 5
    prenet_kernel: int = 5
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError("hidden must be divisible by heads")

    @classmethod
    def tiny(cls, **kw) -> "MelEncoderConfig":
        return cls(**{"hidden": 32, "layers": 1, "ffn_hidden": 64, **kw})

    @classmethod
    def for_base(cls, acoustic_cfg, **kw) -> "MelEncoderConfig":
        """Sized to a base model: same hidden, heads, FFN and mel channels."""
        return cls(**{"n_mels": acoustic_cfg.n_mels, "hidden": acoustic_cfg.hidden,
                      "heads": acoustic_cfg.heads, "ffn_hidden": acoustic_cfg.ffn_hidden,
                      "ffn_kernel": acoustic_cfg.ffn_kernel, **kw})


class MelEncoder(nn.Module):
    """forward(mel (B, n_mels, T) log-mel, frame_mask (B, T) bool) -> (B, T, hidden)."""

    def __init__(self, cfg: MelEncoderConfig):
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
        hidden = self.prenet(mel * keep.transpose(1, 2)).transpose(1, 2) * keep
        hidden = self.encoder(hidden, frame_mask)
        return self.out(hidden) * keep

    def save(self, folder: str | Path, training: dict | None = None, half: bool = False) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        tmp = folder / "model.safetensors.part"
        save_file(state, str(tmp))
        tmp.replace(folder / "model.safetensors")
        config = {"format_version": FORMAT_VERSION, "kind": KIND, "encoder": self.cfg.to_dict(),
                  "training": training or {}}
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def from_dir(cls, folder: str | Path) -> "MelEncoder":
        folder = Path(folder)
        data = read_json(folder / "config.json", "mel-encoder config")
        weights = folder / "model.safetensors"
        if data.get("kind") != KIND or data.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError("not a mel-encoder folder of this adavoice version",
                                   path=folder)
        if not weights.is_file():
            raise MissingFileError("mel-encoder weights missing", path=weights,
                                   fix="train one with `adavoice train mel-encoder`")
        model = cls(MelEncoderConfig.from_dict(data["encoder"]))
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in load_file(str(weights)).items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelFormatError(f"weights do not match config.json ({exc})",
                                   path=weights) from exc
        return model.eval()
