"""Voice bundles (DESIGN §8): ``adapter_config.json`` + ``adapter.safetensors``, an artifact
folder of kind ``adavoice-adapter`` (see ``adavoice.artifacts``).

The config names the base by the sha256 of its weights; loading against another base raises
AdapterMismatchError. Nothing is unpickled.

>>> import tempfile, torch
>>> folder = Path(tempfile.mkdtemp()) / "voice"
>>> _ = write_bundle(folder, {"speaker_vector": torch.zeros(4)}, {"name": "voice"})
>>> tensors, config = read_bundle(folder)
>>> config["kind"], tuple(tensors["speaker_vector"].shape)
('adavoice-adapter', (4,))
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import torch

from adavoice.artifacts import read_artifact, write_artifact
from adavoice.errors import AdapterMismatchError, ConfigError, MissingFileError, OutputError

KIND = "adavoice-adapter"
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"


def check_voice_folder(folder: str | Path) -> None:
    """ConfigError unless :func:`write_bundle` may write ``folder``: new, empty, or a voice
    (which it replaces); OutputError when its parent cannot be written. Cheap and leaves
    nothing behind: callers check before they train."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError("the voice folder path is a file", path=folder,
                          fix="choose a folder path for the voice")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG_NAME).is_file():
        raise ConfigError("the folder holds other files and is not a voice; writing the voice "
                          "there would remove them", path=folder,
                          fix="choose an empty or new folder for the voice")
    existing = folder.resolve().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError("the voice folder would be inside a file", path=existing,
                          fix="choose another place for the voice")
    try:  # a probe, not os.access: read-only mounts and root's rights both answer truly
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".adavoice-probe-"))
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror})", path=existing,
                          fix="choose a folder you can write to") from exc


def write_bundle(folder: str | Path, tensors: dict[str, torch.Tensor], config: dict) -> Path:
    """Write the bundle into a sibling temporary folder, then swap it in, so that weights and
    config always come from the same run. A bundle already at ``folder`` is replaced (the CLI
    refuses that unless asked); a non-empty folder that is not a bundle is refused
    (ConfigError), since the swap would remove its files. A kill during the swap leaves the
    old one beside it, renamed ``.<name>.old-*``, never a mixed pair. OutputError when the
    place cannot be written."""
    folder = Path(folder).resolve()
    check_voice_folder(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        stage = _unique_sibling(folder, "part")
    except OSError as exc:
        raise OutputError(f"cannot write the voice ({exc.strerror})", path=folder) from exc
    old = None
    try:
        write_artifact(stage, KIND, config, tensors, config_name=CONFIG_NAME,
                       weights_name=WEIGHTS_NAME)
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{secrets.token_hex(6)}"
            folder.rename(old)
        stage.rename(folder)
    except OSError as exc:
        raise OutputError(f"cannot write the voice ({exc.strerror})", path=folder) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def _unique_sibling(folder: Path, tag: str) -> Path:
    """A new empty folder ``.<name>.<tag>-<random>`` beside ``folder`` (mode 0o777 less the
    umask, as the voice folder will have): one per writer, so two never share one."""
    while True:
        stage = folder.parent / f".{folder.name}.{tag}-{secrets.token_hex(6)}"
        try:
            stage.mkdir()
            return stage
        except FileExistsError:
            continue


def read_bundle(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, config). MissingFileError / ModelFormatError on a missing or damaged bundle
    (a changed byte in the weights included: the config records their sha256)."""
    if not Path(folder).is_dir():
        raise MissingFileError("no such voice folder", path=folder,
                               fix="pass a folder written by `adavoice adapt`")
    config, tensors = read_artifact(folder, KIND, "voice", CONFIG_NAME, WEIGHTS_NAME)
    return tensors, config


def check_base(config: dict, base_hash: str, folder: str | Path | None = None) -> None:
    """AdapterMismatchError unless the bundle was made for the base with ``base_hash``."""
    expected = config.get("base", {}).get("content_hash")
    if expected != base_hash:
        raise AdapterMismatchError(
            f"this voice was adapted from base {str(expected)[:12]}..., not from the loaded "
            f"base {base_hash[:12]}...", path=folder)
