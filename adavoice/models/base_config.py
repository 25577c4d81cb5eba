"""What a base model is besides its weights: architecture, mel front end, language, text
symbols and speaker names (the ``config.json`` of a base-model folder, see
``adavoice.artifacts`` for the folder format).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adavoice.config import MelConfig
from adavoice.errors import ModelFormatError
from adavoice.models.acoustic_config import AcousticConfig

KIND = "adavoice-base"


@dataclass
class BaseModelConfig:
    """Everything besides the weights: architecture, front end, text symbols, speakers."""

    acoustic: AcousticConfig
    mel: MelConfig
    language: str
    symbols: dict
    speakers: list[str]
    training: dict = field(default_factory=dict)
    # the renderer ``--vocoder auto`` means (universal | fast | griffin-lim); None: universal
    auto_vocoder: str | None = None
    # across-band sharpening of the predicted mels before the universal vocoder
    # (adavoice.postfilter; chosen by measurement); None: none
    mel_sharpening: float | None = None

    def to_dict(self) -> dict:
        data = {"acoustic": self.acoustic.to_dict(), "mel": self.mel.to_dict(),
                "language": self.language, "symbols": self.symbols,
                "speakers": list(self.speakers), "training": self.training}
        if self.auto_vocoder is not None:
            data["auto_vocoder"] = self.auto_vocoder
        if self.mel_sharpening is not None:
            data["mel_sharpening"] = self.mel_sharpening
        return data

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> "BaseModelConfig":
        """ModelFormatError (naming ``path``) for anything that is not a base config."""
        try:
            speakers = data["speakers"]
            if not (isinstance(speakers, list) and all(isinstance(s, str) for s in speakers)):
                raise ModelFormatError("'speakers' must be a list of names", path=path)
            if not isinstance(data["symbols"], dict):
                raise ModelFormatError("'symbols' must be an object", path=path)
            cfg = cls(acoustic=AcousticConfig.from_dict(data["acoustic"]),
                      mel=MelConfig.from_dict(data["mel"]), language=data["language"],
                      symbols=data["symbols"], speakers=list(speakers),
                      training=data.get("training", {}),
                      auto_vocoder=data.get("auto_vocoder"),
                      mel_sharpening=data.get("mel_sharpening"))
        except KeyError as exc:
            raise ModelFormatError(f"config.json lacks {exc}", path=path) from exc
        except ModelFormatError:
            raise
        except Exception as exc:  # wrong types or unknown fields in the nested configs
            raise ModelFormatError(f"config.json is not a valid base config ({exc})",
                                   path=path) from exc
        if cfg.auto_vocoder not in (None, "universal", "fast", "griffin-lim"):
            raise ModelFormatError(f"auto_vocoder {cfg.auto_vocoder!r} is not a renderer",
                                   path=path, fix="universal | fast | griffin-lim")
        if cfg.mel_sharpening is not None:
            from adavoice.errors import ConfigError
            from adavoice.postfilter import check_sharpening

            try:
                check_sharpening(cfg.mel_sharpening)
            except ConfigError as exc:
                raise ModelFormatError(f"mel_sharpening: {exc.message}", path=path,
                                       fix=exc.fix) from exc
        if len(cfg.speakers) != cfg.acoustic.n_speakers:
            raise ModelFormatError(f"{len(cfg.speakers)} speaker names for "
                                   f"{cfg.acoustic.n_speakers} speakers", path=path)
        return cfg
