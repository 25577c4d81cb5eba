"""``adavoice export``: a base model, its vocoders and voices as a deployable bundle (the format
is :mod:`adavoice.runtime.format`; the runtime that reads it needs no torch).

Voices of kinds that leave the weights alone (the base's seen speakers, ``embedding``,
``cln``) are four small tensors each, fed to the one shared ``acoustic.onnx``: adding one
writes two small files and never re-exports. Kinds that change weights (``lora``,
``decoder``) carry their own acoustic graph beside their tensors (measured in BENCHMARKS.md:
LoRA matrices as graph inputs would make every voice pay for them on every pass).

>>> import tempfile
>>> out = export_bundle("demo", Path(tempfile.mkdtemp()) / "bundle", vocoders=(),
...                     speakers=["flite:rms"])
>>> sorted(p.name for p in (out / "voices").iterdir())
['flite-rms.json', 'flite-rms.safetensors']
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import torch

from adavoice.atomic import atomic_write_bytes
from adavoice.errors import (
    AdapterMismatchError,
    ConfigError,
    ModelFormatError,
    OutputError,
)
from adavoice.export.acoustic import (
    INPUTS,
    OUTPUTS,
    export_acoustic,
    parity,
    voice_inputs,
)
from adavoice.models.acoustic import SpeakerCondition
from adavoice.models.base_model import BaseModel
from adavoice.models.mel_postfilter import VOICE_PREFIX
from adavoice.runtime import read_bundle_json
from adavoice.runtime.format import (
    BUNDLE_FORMAT_VERSION,
    BUNDLE_JSON,
    BUNDLE_KIND,
    VOICE_KIND,
    VOICES_DIR,
    sha256_of,
    voice_slug,
)
from adavoice.text.chunks import MAX_CHARS_PER_PASS, MAX_TOKENS_PER_PASS

DEVICES = ("cpu", "cuda")
VOCODER_FILES = {"universal": "vocoder.onnx", "fast": "vocoder-fast.onnx"}
POSTFILTER_FILE = "postfilter.onnx"
# onnxruntime settings the runtime applies per device: the CUDA provider's exhaustive cuDNN
# convolution search made Piper's GPU runs slower than its CPU runs (rhasspy/piper#176)
CUDA_PROVIDER_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC"}


def export_bundle(model: str | Path = "demo", out: str | Path = "bundle", device: str = "cpu",
                  voices: list[str | Path] = (), names: list[str] | None = None,
                  vocoders: tuple[str, ...] | None = None, speakers: list[str] | None = None,
                  overwrite: bool = False) -> Path:
    """Write the bundle for base ``model`` at ``out`` (built aside, then moved into place: a
    killed export leaves no half bundle). ``voices``: adapter folders to include, named by
    ``names`` or their folder names; ``speakers``: the seen speakers to include (all by
    default); ``vocoders``: which of universal/fast (default: every one the base has)."""
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}", fix="use cpu or cuda")
    out = Path(out)
    _check_out(out, overwrite)
    names = list(names or [])
    if len(names) > len(voices):
        raise ConfigError(f"{len(names)} names for {len(voices)} voices")
    base = BaseModel.load(model, precision="float32")
    loaded = [_load_voice(base, folder) for folder in voices]  # bad voices fail before writing
    half = device == "cuda"
    work = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    work.mkdir(parents=True)
    try:
        (work / VOICES_DIR).mkdir()
        export_acoustic(base.model, work / "acoustic.onnx", half=half)
        graphs = {"acoustic": _graph_entry(work, "acoustic.onnx")}
        if not half:  # every CPU export checks itself against eager torch
            tokens = [t[0].tolist() for t in base.token_pieces("Parity check, one two three.")]
            graphs["acoustic"]["parity"] = parity(base.model, work / "acoustic.onnx",
                                                  base.model.speaker_condition(0), tokens)
        graphs["vocoders"] = _export_vocoders(base, work, vocoders, half)
        config = _bundle_config(base, device, graphs)
        _write_json(work / BUNDLE_JSON, config)
        for speaker in (base.speakers if speakers is None else speakers):
            condition = base.model.speaker_condition(base.speaker_id(speaker))
            _write_voice(work, config, base, speaker, condition, "seen-speaker", None,
                         {"speaker": speaker}, overwrite=False)
        for index, voice in enumerate(loaded):
            name = names[index] if index < len(names) else Path(voices[index]).name
            _write_adapted(work, config, base, voice, name, half, overwrite=False)
        _swap_in(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return out


def _swap_in(work: Path, out: Path) -> None:
    """Put the finished bundle at ``out``: an old bundle there is moved aside first and
    deleted only once the new one is in place, so a kill at any point leaves one whole
    bundle at ``out`` or beside it."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{secrets.token_hex(4)}.old")
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def add_voice(bundle: str | Path, voice: str | Path, name: str | None = None,
              overwrite: bool = False, model: str | Path | None = None) -> Path:
    """Add the adapted voice in folder ``voice`` to an existing bundle without touching its
    graphs; AdapterMismatchError when the voice or the bundle is for another base. ``model``:
    the base model folder (default: the one bundle.json names)."""
    bundle = Path(bundle)
    config = read_bundle_json(bundle)
    named = model if model is not None else config["base"]["name"]
    base = BaseModel.load(named, precision="float32")
    if base.content_hash != config["base"]["weights_sha256"]:
        raise AdapterMismatchError(f"this bundle was exported from another base than {named}",
                                   path=bundle, fix="pass the bundle's base with --model, or "
                                                    "export the bundle again from this base")
    loaded = _load_voice(base, voice)
    return _write_adapted(bundle, config, base, loaded, name or Path(voice).name,
                          config["device"] == "cuda", overwrite)


# ---- pieces ----------------------------------------------------------------------------------
def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError("the output is a file, not a folder", path=out)
    if out.is_dir() and any(out.iterdir()):
        if not (out / BUNDLE_JSON).is_file():
            raise OutputError("the output folder is not empty and holds no bundle", path=out,
                              fix="pass an empty or new folder")
        if not overwrite:
            raise OutputError("a bundle is already there", path=out,
                              fix="pass --overwrite to replace it, or --add-voice to add a voice")


def _load_voice(base: BaseModel, folder: str | Path):
    from adavoice.api import Voice

    return Voice.load(folder, base=base)


def _graph_entry(folder: Path, file: str) -> dict:
    return {"file": file, "sha256": sha256_of(folder / file)}


def _export_vocoders(base: BaseModel, work: Path, wanted, half: bool) -> dict:
    from adavoice.export.vocoder import export_postfilter, export_vocoder, parity_error
    from adavoice.models.universal import PASS_FRAMES, HiFiGANRenderer

    available = ["universal"] + (["fast"] if (base.folder / "vocoder").is_dir() else [])
    wanted = available if wanted is None else list(wanted)
    entries = {}
    for kind in wanted:
        if kind not in available:
            raise ConfigError(f"this base has no {kind!r} vocoder to export",
                              fix="choose from: " + ", ".join(available))
        renderer = base.vocoder(kind)
        if isinstance(renderer, HiFiGANRenderer):  # universal, or a shrunk HiFi-GAN as fast
            # the bundle runs in onnxruntime (CPU or GPU): the grid of pass lengths, not the
            # short windows that pay in torch on a CPU
            module, passes = renderer.generator, PASS_FRAMES
            context = renderer.context_frames
        else:
            module, passes, context = renderer.vocoder, None, 0
        file = VOCODER_FILES[kind]
        export_vocoder(module, work / file, half=half)
        entry = {**_graph_entry(work, file), "pass_frames": list(passes or []),
                 "context_frames": context, "hop_length": base.cfg.mel.hop_length}
        if base.mel_sharpening(kind) != 1.0:  # the runtime sharpens synthesised mels too
            entry["mel_sharpening"] = base.mel_sharpening(kind)
        postfilter = base.mel_postfilter(kind)
        if postfilter is not None:  # and post-filters them, where the base does
            if not (work / POSTFILTER_FILE).is_file():
                export_postfilter(postfilter, work / POSTFILTER_FILE, half=half)
            entry["postfilter"] = {**_graph_entry(work, POSTFILTER_FILE),
                                   "weights_sha256": base.postfilter_id}
        if not half:
            torch.manual_seed(0)
            entry["parity_max_abs"] = parity_error(module, work / file, torch.randn(1, 80, 40) - 5)
        entries[kind] = entry
    return entries


def _bundle_config(base: BaseModel, device: str, graphs: dict) -> dict:
    processor = base.processor
    acoustic = base.cfg.acoustic
    vocoders = graphs["vocoders"]
    auto = base.auto_vocoder if base.auto_vocoder in vocoders else next(iter(vocoders), None)
    return {
        "format_version": BUNDLE_FORMAT_VERSION, "kind": BUNDLE_KIND, "device": device,
        "precision": "float16" if device == "cuda" else "float32",
        "providers": (["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda"
                      else ["CPUExecutionProvider"]),
        "provider_options": {"CUDAExecutionProvider": CUDA_PROVIDER_OPTIONS},
        "base": {"name": str(base.name), "weights_sha256": base.content_hash},
        "sample_rate_hz": base.sample_rate, "mel": base.cfg.mel.to_dict(),
        "text": {"symbols": processor.symbols.to_dict(), "pack": processor.pack.to_dict(),
                 "max_chars_per_pass": MAX_CHARS_PER_PASS,
                 "max_tokens_per_pass": MAX_TOKENS_PER_PASS},
        "acoustic": {"inputs": list(INPUTS), "outputs": list(OUTPUTS),
                     "norms": len(base.model.conditional_norms()), "hidden": acoustic.hidden,
                     "speaker_dim": acoustic.speaker_dim, "n_mels": acoustic.n_mels},
        "graphs": graphs,
        "defaults": {"length_scale": 1.0, "pitch_shift": 0.0, "energy_scale": 1.0,
                     "vocoder": auto, "voice": None},
        "exporter": {"torch": torch.__version__, "method": "torch.onnx.export(dynamo=False)",
                     "opset": 17},
    }


def _write_adapted(bundle: Path, config: dict, base: BaseModel, voice, name: str, half: bool,
                   overwrite: bool) -> Path:
    condition: SpeakerCondition = voice.condition
    source = {"adapter": str(voice.config.get("name", name)),
              "provenance": voice.config.get("provenance", {})}
    defaults = {"length_scale": voice.defaults.length_scale,
                "pitch_shift": voice.defaults.pitch_shift,
                "energy_scale": voice.defaults.energy_scale}
    return _write_voice(bundle, config, base, name, condition, voice.kind, defaults, source,
                        half=half, overwrite=overwrite)


def _write_voice(bundle: Path, config: dict, base: BaseModel, name: str,
                 condition: SpeakerCondition, kind: str, defaults: dict | None, source: dict,
                 half: bool = False, overwrite: bool = True) -> Path:
    from safetensors.numpy import save

    slug = voice_slug(name)
    folder = bundle / VOICES_DIR
    folder.mkdir(exist_ok=True)
    meta_path = folder / f"{slug}.json"
    if meta_path.exists() and not overwrite:
        raise OutputError(f"the bundle already has a voice {name!r}", path=meta_path,
                          fix="pass --overwrite to replace it, or --name to add it as another")
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32)
               for k, v in voice_inputs(base.model, condition).items()}
    if _has_postfilter(config):  # the post-filter graph's voice inputs: its own or the base's
        recorded = {e["postfilter"].get("weights_sha256")
                    for e in config["graphs"]["vocoders"].values() if e.get("postfilter")}
        net = base.mel_postfilter("universal")
        if net is None or not recorded <= {None, base.postfilter_id}:  # None: an older bundle
            raise AdapterMismatchError("the bundle's post-filter is not this base's (retrained "
                                       "since, or removed)", path=base.folder / "postfilter",
                                       fix="export the bundle again from this base")
        tensors.update({VOICE_PREFIX + k: np.ascontiguousarray(v.numpy(), dtype=np.float32)
                        for k, v in net.voice_values(condition.postfilter).items()})
    if not all(np.isfinite(v).all() for v in tensors.values()):
        raise ModelFormatError(f"voice {name!r} holds non-finite numbers")
    graph = None
    if condition.decoder is not None:  # lora / decoder kinds: the voice's own graph
        graph = f"{slug}.onnx"
        export_acoustic(base.model, folder / graph, decoder=condition.decoder, half=half)
    data = save(tensors)
    atomic_write_bytes(folder / f"{slug}.safetensors", data, "the voice's tensors")
    meta = {"format_version": BUNDLE_FORMAT_VERSION, "kind": VOICE_KIND, "name": name,
            "adapter_kind": kind, "base_weights_sha256": config["base"]["weights_sha256"],
            "tensors": f"{slug}.safetensors", "tensors_sha256": sha256_of(
                folder / f"{slug}.safetensors"),
            "graph": graph, "graph_sha256": None if graph is None else sha256_of(folder / graph),
            "defaults": defaults or {}, "source": source,
            "stored_numbers": int(sum(v.size for v in tensors.values()))}
    _write_json(meta_path, meta)
    return meta_path


def _has_postfilter(config: dict) -> bool:
    """Whether the bundle's vocoders post-filter their mels (each voice then carries the
    post-filter graph's voice inputs)."""
    entries = (config.get("graphs") or {}).get("vocoders") or {}
    return any(isinstance(e, dict) and e.get("postfilter") for e in entries.values())


def _write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode(),
                       path.name)

