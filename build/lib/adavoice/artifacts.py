"""The one on-disk format of every artifact adavoice writes: a folder holding a JSON config
(``format_version``, ``kind``, ``weights_sha256`` and the artifact's own fields) next to a
safetensors file. Base models, their parts (vocoder, speaker and speech encoders) and voice
bundles are all read and written here; nothing is unpickled.

Both files go through unique temporary names and an atomic rename (two writers never mix), and
the config records the sha256 of the weights file, so a flipped byte is a ModelFormatError on
load instead of a voice that speaks wrongly.

>>> import tempfile, torch
>>> folder = Path(tempfile.mkdtemp())
>>> _ = write_artifact(folder, "demo-part", {"size": 2}, {"weight": torch.ones(2)}, half=True)
>>> config, tensors = read_artifact(folder, "demo-part", "demo part")
>>> config["size"], tensors["weight"].dtype, config["weights_sha256"] == sha256_file(
...     folder / WEIGHTS_NAME)
(2, torch.float32, True)
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch

from adavoice.atomic import atomic_path, output_error, sha256_file
from adavoice.config import read_json
from adavoice.errors import (
    AdavoiceError,
    ConfigError,
    MissingFileError,
    ModelFormatError,
    OutputError,
)

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` as indented UTF-8 JSON, atomically (OutputError when it cannot)."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    with atomic_path(path, "the config") as tmp:
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise output_error(Path(path), "the config", exc) from exc
    return Path(path)



def write_weights(path: str | Path, tensors: dict[str, torch.Tensor], half: bool = False) -> str:
    """Write safetensors atomically (``half``: floats as fp16); returns the file's sha256."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with atomic_path(path, "the weights") as tmp:
        # bytes, then our own write: safetensors' save_file renames a 0o600 file of its own
        # over the temporary file, which would leave the weights unreadable to others
        data = save(state, metadata={"format_version": str(FORMAT_VERSION)})
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise output_error(Path(path), "the weights", exc) from exc
        digest = sha256_file(tmp)
    return digest


def write_artifact(folder: str | Path, kind: str, config: dict,
                   tensors: dict[str, torch.Tensor], half: bool = False,
                   config_name: str = CONFIG_NAME, weights_name: str = WEIGHTS_NAME) -> Path:
    """Write ``tensors`` and ``{format_version, kind, weights_sha256, **config}`` into
    ``folder`` (made if needed). The weights go first: a config never names weights that are
    not there. OutputError when the folder cannot be written."""
    folder = Path(folder)
    reserved = sorted({"format_version", "kind", "weights_sha256"} & set(config))
    if reserved:
        raise ValueError(f"the artifact writer sets {reserved} itself")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder ({exc.strerror})", path=folder) from exc
    digest = write_weights(folder / weights_name, tensors, half)
    full = {"format_version": FORMAT_VERSION, "kind": kind, **config, "weights_sha256": digest}
    write_json(folder / config_name, full)
    return folder


def read_config(folder: str | Path, kind: str, what: str,
                config_name: str = CONFIG_NAME) -> dict:
    """The artifact's config: MissingFileError when absent, ModelFormatError when it is not
    a JSON object of ``kind`` and this format version."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"no such {what} folder", path=folder)
    path = folder / config_name
    try:
        config = read_json(path, f"{what} config")
    except ConfigError as exc:
        raise ModelFormatError(exc.message, path=path) from exc
    if not isinstance(config, dict) or config.get("kind") != kind:
        raise ModelFormatError(f"not a {what} config (kind is not {kind!r})", path=path)
    version = config.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelFormatError(f"format_version {version!r}, this adavoice reads "
                               f"{FORMAT_VERSION}", path=path)
    if not isinstance(config.get("weights_sha256"), str):
        raise ModelFormatError("the config names no weights_sha256", path=path,
                               fix="write the folder again with this adavoice")
    return config


def read_weights(path: str | Path, what: str, sha256: str) -> dict[str, torch.Tensor]:
    """fp32 tensors of a safetensors file whose sha256 must be ``sha256``: MissingFileError
    when absent, ModelFormatError when damaged or changed since it was written."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} weights missing", path=path,
                               fix="copy the whole folder again")
    if sha256_file(path) != sha256:
        raise ModelFormatError(f"{what} weights are damaged: their checksum is not the one "
                               "the config recorded", path=path,
                               fix="copy the whole folder again")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise ModelFormatError(f"{what} weights are unreadable ({exc})", path=path) from exc
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def read_artifact(folder: str | Path, kind: str, what: str, config_name: str = CONFIG_NAME,
                  weights_name: str = WEIGHTS_NAME) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, fp32 tensors) of an artifact folder written by :func:`write_artifact`."""
    config = read_config(folder, kind, what, config_name)
    tensors = read_weights(Path(folder) / weights_name, what, config["weights_sha256"])
    return config, tensors


def load_weights(module: torch.nn.Module, state: dict, folder: str | Path) -> torch.nn.Module:
    """``load_state_dict`` with a ModelFormatError when the weights do not fit the config."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:300]  # torch's message spans lines
        raise ModelFormatError(f"weights do not match the config ({reason})",
                               path=Path(folder)) from exc
    return module.eval()


@contextmanager
def damaged(folder: str | Path, what: str):
    """Turn what a damaged artifact raises (KeyError, TypeError, shape mismatches) into a
    ModelFormatError naming the folder; adavoice's own typed errors pass through."""
    try:
        yield
    except AdavoiceError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"the {what} is damaged ({type(exc).__name__}: "
                               f"{str(exc)[:200]})", path=folder) from exc
