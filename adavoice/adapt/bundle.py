"""Adapter bundle I/O (DESIGN §8): ``adapter_config.json`` + ``adapter.safetensors``.

The config names the base by the sha256 of its weights; loading against another base raises
AdapterMismatchError. Nothing is unpickled.

>>> import tempfile, torch
>>> folder = Path(tempfile.mkdtemp()) / "voice"
>>> _ = write_bundle(folder, {"speaker_vector": torch.zeros(4)}, {"kind": "embedding"})
>>> tensors, config = read_bundle(folder)
>>> config["kind"], tuple(tensors["speaker_vector"].shape)
('embedding', (4,))
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from adavoice.config import read_json
from adavoice.errors import AdapterMismatchError, ConfigError, MissingFileError, ModelFormatError
from adavoice.models.release import write_weights

FORMAT_VERSION = 1
KIND = "adavoice-adapter"
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"


def check_voice_folder(folder: str | Path) -> None:
    """ConfigError unless :func:`write_bundle` may write ``folder``: new, empty, or a voice
    (which it replaces). Cheap: callers check before they train."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError("the voice folder path is a file", path=folder,
                          fix="choose a folder path for the voice")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG_NAME).is_file():
        raise ConfigError("the folder holds other files and is not a voice; writing the voice "
                          "there would remove them", path=folder,
                          fix="choose an empty or new folder for the voice")


def write_bundle(folder: str | Path, tensors: dict[str, torch.Tensor], config: dict) -> Path:
    """Write the bundle into a sibling temporary folder, then swap it in, so that weights and
    config always come from the same run. A bundle already at ``folder`` is replaced (the CLI
    refuses that unless asked); a non-empty folder that is not a bundle is refused
    (ConfigError), since the swap would remove its files. A kill during the swap leaves the
    old one beside it, renamed ``.<name>.old-<pid>``, never a mixed pair."""
    folder = Path(folder).resolve()
    check_voice_folder(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = folder.parent / f".{folder.name}.part-{os.getpid()}"
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        stage.mkdir()
        write_weights(stage / WEIGHTS_NAME, tensors,
                      metadata={"format_version": str(FORMAT_VERSION)})
        full = {"format_version": FORMAT_VERSION, "type": KIND, **config}
        (stage / CONFIG_NAME).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
        if folder.exists():
            folder.rename(old)
        stage.rename(folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def read_bundle(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, config). MissingFileError / ModelFormatError on a missing or damaged bundle."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError("no such voice folder", path=folder,
                               fix="pass a folder written by `adavoice adapt`")
    config = read_json(folder / CONFIG_NAME, "adapter config")
    if not isinstance(config, dict) or config.get("type") != KIND:
        raise ModelFormatError("not an adavoice adapter config", path=folder / CONFIG_NAME)
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"adapter format_version {config.get('format_version')!r}, this "
                               f"adavoice reads {FORMAT_VERSION}", path=folder / CONFIG_NAME)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise MissingFileError("adapter weights missing", path=weights,
                               fix="copy the whole voice folder, or adapt again")
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise ModelFormatError(f"adapter weights are unreadable ({exc})", path=weights) from exc
    return tensors, config


def check_base(config: dict, base_hash: str, folder: str | Path | None = None) -> None:
    """AdapterMismatchError unless the bundle was made for the base with ``base_hash``."""
    expected = config.get("base", {}).get("content_hash")
    if expected != base_hash:
        raise AdapterMismatchError(
            f"this voice was adapted from base {str(expected)[:12]}..., not from the loaded "
            f"base {base_hash[:12]}...", path=folder)
