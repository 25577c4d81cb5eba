"""One release format for the parts beside a base model (vocoder, speaker and mel encoders):
``config.json`` (``kind``, ``format_version``, the part's config and metadata) next to
``model.safetensors``. Weights go through a temporary file and a rename; nothing is unpickled.

>>> import tempfile, torch
>>> folder = Path(tempfile.mkdtemp())
>>> _ = save_release(folder, torch.nn.Linear(2, 2), "demo-part", {"size": 2}, half=True)
>>> config, state = load_release(folder, "demo-part", "demo part")
>>> config["size"], state["weight"].dtype
(2, torch.float32)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from adavoice.config import read_json
from adavoice.errors import MissingFileError, ModelFormatError

FORMAT_VERSION = 1


def write_weights(path: str | Path, tensors: dict[str, torch.Tensor], half: bool = False,
                  metadata: dict[str, str] | None = None) -> Path:
    """safetensors through a temporary file and a rename; ``half`` stores floats as fp16."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    tmp = path.with_name(path.name + ".part")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def save_release(folder: str | Path, module: torch.nn.Module, kind: str, config: dict,
                 half: bool = False) -> Path:
    """Write ``module``'s weights (fp16 when ``half``) and ``{kind, format_version, **config}``."""
    folder = Path(folder)
    write_weights(folder / "model.safetensors", module.state_dict(), half)
    full = {"format_version": FORMAT_VERSION, "kind": kind, **config}
    (folder / "config.json").write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return folder


def load_release(folder: str | Path, kind: str, what: str) -> tuple[dict, dict]:
    """(config, fp32 state dict); ModelFormatError / MissingFileError naming the folder."""
    folder = Path(folder)
    config = read_json(folder / "config.json", f"{what} config")
    if config.get("kind") != kind or config.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"not a {what} folder of this adavoice version", path=folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise MissingFileError(f"{what} weights missing", path=weights)
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise ModelFormatError(f"{what} weights are unreadable ({exc})", path=weights) from exc
    return config, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_weights(module: torch.nn.Module, state: dict, folder: str | Path) -> torch.nn.Module:
    """``load_state_dict`` with a ModelFormatError when the weights do not fit the config."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFormatError(f"weights do not match config.json ({exc})",
                               path=Path(folder) / "model.safetensors") from exc
    return module.eval()
