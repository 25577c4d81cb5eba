"""The base-model folder: ``config.json`` + ``model.safetensors`` (+ ``vocoder/``,
``MODEL_CARD.md``). Loaded without pickle; content-hashed so adapters can name their base.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from adavoice.config import MelConfig
from adavoice.errors import MissingFileError, ModelFormatError
from adavoice.models.acoustic import AcousticModel
from adavoice.models.acoustic_config import AcousticConfig
from adavoice.models.release import write_weights

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class BaseModelConfig:
    """Everything besides the weights: architecture, front end, text symbols, speakers."""

    acoustic: AcousticConfig
    mel: MelConfig
    language: str
    symbols: dict
    speakers: list[str]
    training: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return {"format_version": self.format_version, "kind": "adavoice-base",
                "acoustic": self.acoustic.to_dict(), "mel": self.mel.to_dict(),
                "language": self.language, "symbols": self.symbols,
                "speakers": list(self.speakers), "training": self.training}

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> "BaseModelConfig":
        """ModelFormatError (naming ``path``) for anything that is not a base config."""
        if not isinstance(data, dict):
            raise ModelFormatError("config.json is not a JSON object", path=path)
        version = data.get("format_version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise ModelFormatError(f"format_version {version!r}, this adavoice reads "
                                   f"{FORMAT_VERSION}", path=path)
        try:
            speakers = data["speakers"]
            if not (isinstance(speakers, list) and all(isinstance(s, str) for s in speakers)):
                raise ModelFormatError("'speakers' must be a list of names", path=path)
            if not isinstance(data["symbols"], dict):
                raise ModelFormatError("'symbols' must be an object", path=path)
            cfg = cls(acoustic=AcousticConfig.from_dict(data["acoustic"]),
                      mel=MelConfig.from_dict(data["mel"]), language=data["language"],
                      symbols=data["symbols"], speakers=list(speakers),
                      training=data.get("training", {}), format_version=version)
        except KeyError as exc:
            raise ModelFormatError(f"config.json lacks {exc}", path=path) from exc
        except ModelFormatError:
            raise
        except Exception as exc:  # wrong types or unknown fields in the nested configs
            raise ModelFormatError(f"config.json is not a valid base config ({exc})",
                                   path=path) from exc
        if len(cfg.speakers) != cfg.acoustic.n_speakers:
            raise ModelFormatError(f"{len(cfg.speakers)} speaker names for "
                                   f"{cfg.acoustic.n_speakers} speakers", path=path)
        return cfg


def save_base_model(folder: str | Path, model: AcousticModel, cfg: BaseModelConfig,
                    half: bool = False) -> Path:
    """Write the release folder. ``half`` stores weights as fp16 (shipping); loading upcasts."""
    folder = Path(folder)
    write_weights(folder / WEIGHTS_NAME, model.state_dict(), half,
                  metadata={"format_version": str(FORMAT_VERSION)})
    text = json.dumps(cfg.to_dict(), indent=2, ensure_ascii=False) + "\n"
    (folder / CONFIG_NAME).write_text(text, encoding="utf-8")
    return folder


def load_base_model(folder: str | Path) -> tuple[AcousticModel, BaseModelConfig]:
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise MissingFileError("base model file missing", path=path,
                                   fix="point at a folder written by `adavoice train base`")
    try:
        cfg = BaseModelConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")),
                                        config_path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"config.json is not valid JSON ({exc})", path=config_path) from exc
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise ModelFormatError(f"weights are unreadable ({exc})", path=weights_path) from exc
    model = AcousticModel(cfg.acoustic)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFormatError(f"weights do not match config.json ({exc})",
                               path=weights_path) from exc
    return model.eval(), cfg


def content_hash(folder: str | Path) -> str:
    """sha256 of the weights file: the identity adapters record for their base."""
    digest = hashlib.sha256()
    with open(Path(folder) / WEIGHTS_NAME, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mean_utterance_vectors(model: AcousticModel, batches, n_speakers: int) -> torch.Tensor:
    """Average utterance-encoder output per speaker over training batches -> (n_speakers, H)."""
    hidden = model.cfg.hidden
    sums, counts = torch.zeros(n_speakers, hidden), torch.zeros(n_speakers)
    if model.utterance_encoder is None:
        return sums
    with torch.no_grad():
        for batch in batches:
            vectors = model.utterance_encoder(batch.mel, batch.frame_mask)
            sums.index_add_(0, batch.speakers, vectors)
            counts.index_add_(0, batch.speakers, torch.ones(len(batch.speakers)))
    return sums / counts.clamp(min=1).unsqueeze(1)
