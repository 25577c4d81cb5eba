"""Training checkpoints: resumable, written atomically (temp file + fsync + rename).

A training checkpoint (``checkpoints/last.pt``) holds model, optimizer and scheduler state, the
step, the data position and the RNG state. It is this project's own file, read back with
``torch.load(weights_only=True)`` (no arbitrary unpickling). Release artifacts are separate:
``config.json`` + ``*.safetensors``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from adavoice.errors import CheckpointError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("no checkpoint to resume from", path=path,
                              fix="start without --resume, or point --out at the run's folder")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint is unreadable ({exc})", path=path) from exc
