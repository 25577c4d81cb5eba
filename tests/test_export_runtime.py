"""Issue 19: bundles (export), the runtime without torch, and their typed errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from adavoice.errors import (
    AdapterMismatchError,
    ConfigError,
    EmptyTextError,
    MissingFileError,
    ModelFormatError,
    OutputError,
    UnknownSpeakerError,
)
from adavoice.export.bundle import add_voice, export_bundle
from adavoice.runtime import Synthesizer
from tests.conftest import one_line_error, run_cli, save_tiny_base, tiny_voice

REPO = Path(__file__).resolve().parent.parent
TEXT = "Hello there, this is a test of the bundle."


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    """A CLN voice on the demo base, adapted briefly from the shipped clips (the folders
    `make demo` writes under adapters/ are not in the repository)."""
    from adavoice.adaptation.config import AdapterConfig
    from adavoice.api import adapt

    config = AdapterConfig.for_kind("cln", steps=3, postfilter_steps=3)  # its own values too
    voice = adapt("demo", REPO / "examples" / "demo-voice", config=config, max_utterances=6,
                  progress=False)
    return voice.save(tmp_path_factory.mktemp("voices") / "demo-transcribed")


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory, adapted):
    """The demo base with two seen speakers, one adapted voice and the universal vocoder."""
    return export_bundle("demo", tmp_path_factory.mktemp("b") / "demo", voices=[adapted],
                         speakers=["flite:rms", "espeak:en-us+f2"])


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """The tiny base with a tiny fast vocoder: quick bundles to damage."""
    from adavoice.config import MelConfig
    from adavoice.models.vocoder import Vocoder, VocoderConfig

    folder = save_tiny_base(tmp_path_factory.mktemp("tiny") / "model")
    torch.manual_seed(0)
    Vocoder(VocoderConfig.tiny()).save(folder / "vocoder", MelConfig())
    return export_bundle(folder, folder.parent / "bundle", vocoders=("fast",))


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


# ---- export: parity with eager torch ---------------------------------------------------------
def test_export_records_parity_and_voice_inputs(demo_bundle):
    config = json.loads((demo_bundle / "bundle.json").read_text())
    assert config["graphs"]["acoustic"]["parity"]["durations_equal"] is True
    assert config["graphs"]["acoustic"]["parity"]["mel_max_abs"] < 1e-4
    assert config["graphs"]["vocoders"]["universal"]["parity_max_abs"] < 1e-4
    assert config["defaults"]["vocoder"] == "universal"
    assert config["acoustic"]["inputs"][:5] == ["tokens", "speaker_vector", "utterance_vector",
                                                "norm_scale", "norm_bias"]
    voices = sorted(p.name for p in (demo_bundle / "voices").glob("*.json"))
    assert voices == ["demo-transcribed.json", "espeak-en-us-f2.json", "flite-rms.json"]
    meta = json.loads((demo_bundle / "voices" / "demo-transcribed.json").read_text())
    assert meta["graph"] is None and meta["adapter_kind"] == "cln"
    # the acoustic inputs, and the post-filter graph's: the voice's own tuned values
    assert meta["stored_numbers"] == 64 + 128 + 2 * 8 * 128 + 417


def test_runtime_mel_matches_eager_torch(demo_bundle, adapted):
    from adavoice.api import BaseModel, Voice

    base = BaseModel.load("demo", precision="float32")
    tts = Synthesizer.load(demo_bundle, threads=1)
    voice = Voice.load(adapted, base=base)
    for name, condition, knobs in (
            ("flite:rms", base.model.speaker_condition(base.speaker_id("flite:rms")), {}),
            ("demo-transcribed", voice.condition,
             {"length_scale": 1.3, "pitch_shift": -2.0, "energy_scale": 0.8})):
        got = tts.mel(TEXT, voice=name, **knobs)
        from adavoice.config import SynthesisConfig

        expected = base.mel(TEXT, condition, SynthesisConfig(**knobs)).numpy()
        assert got.shape == expected.shape  # durations equal, so frames equal
        assert np.abs(got - expected).max() < 1e-4


def test_runtime_audio_matches_torch_path(demo_bundle, adapted):
    from adavoice.api import BaseModel, Voice
    from adavoice.models.universal import HiFiGANRenderer, load_universal

    base = BaseModel.load("demo", precision="float32")
    tts = Synthesizer.load(demo_bundle, threads=1)
    mel = tts.mel("Short one.", voice="flite:rms")
    long_mel = np.concatenate([mel] * 12, axis=-1)  # over 1024 frames: windowed passes
    renderer = HiFiGANRenderer(load_universal(), precision="float32")
    for m in (mel, long_mel):
        expected = renderer(torch.from_numpy(m)).numpy()
        got = tts.vocode(m)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-3
    samples, rate = tts.synthesize("Short one.", voice="flite:rms")
    assert rate == base.sample_rate == 22050 and samples.dtype == np.float32
    assert samples.shape == ((mel.shape[-1] - 1) * 256,)
    # the runtime shapes its mels before the universal vocoder as the torch base does: the
    # base's learned post-filter where it ships one, else its sharpening
    entry = json.loads((demo_bundle / "bundle.json").read_text())["graphs"]["vocoders"]
    assert entry["universal"].get("mel_sharpening", 1.0) == base.mel_sharpening("universal")
    assert ("postfilter" in entry["universal"]) == base.has_postfilter
    with torch.no_grad():
        shaped = base.mel_filter("universal")(torch.from_numpy(mel)).numpy()
    assert np.abs(samples - tts.vocode(shaped)).max() < 1e-3
    # an adapted voice's mels go through the post-filter with its own tuned values
    voice = Voice.load(adapted, base=base)
    assert voice.condition.postfilter is not None
    mel = tts.mel("Short one.", voice="demo-transcribed")
    samples, _ = tts.synthesize("Short one.", voice="demo-transcribed")
    with torch.no_grad():
        own = base.mel_filter("universal", voice.condition)(torch.from_numpy(mel)).numpy()
        shared = base.mel_filter("universal")(torch.from_numpy(mel)).numpy()
    assert np.abs(samples - tts.vocode(own)).max() < 1e-3
    assert np.abs(own - shared).max() > 1e-4
    del base


def test_cuda_bundle_is_float16_with_the_same_inputs(demo_bundle, tmp_path):
    import onnx

    out = export_bundle("demo", tmp_path / "gpu", device="cuda", speakers=["flite:rms"],
                        vocoders=())
    config = json.loads((out / "bundle.json").read_text())
    assert config["precision"] == "float16" and config["providers"][0] == "CUDAExecutionProvider"
    assert config["provider_options"]["CUDAExecutionProvider"] == {
        "cudnn_conv_algo_search": "HEURISTIC"}
    gpu, cpu = onnx.load(str(out / "acoustic.onnx")), onnx.load(str(demo_bundle / "acoustic.onnx"))
    onnx.checker.check_model(gpu)
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in gpu.graph.initializer) > 10

    def io(model):
        return [(i.name, i.type.tensor_type.elem_type)
                for i in [*model.graph.input, *model.graph.output]]

    assert io(gpu) == io(cpu)
    # the CPU provider runs it too (casting where it lacks float16 kernels): same durations
    half = Synthesizer.load(out, providers=["CPUExecutionProvider"]).mel(TEXT, voice="flite:rms")
    full = Synthesizer.load(demo_bundle).mel(TEXT, voice="flite:rms")
    assert half.shape == full.shape and np.abs(half - full).max() < 0.05


@pytest.mark.parametrize("kind", ["lora", "decoder"])
def test_weight_changing_voice_carries_its_own_graph(tmp_path, demo_bundle, kind):
    from adavoice.api import BaseModel, Voice, adapt

    clips = REPO / "examples" / "demo-voice"
    voice = adapt("demo", clips, kind=kind, steps=2, max_utterances=6, progress=False)
    folder = voice.save(tmp_path / f"{kind}-voice")
    bundle = _copy(demo_bundle, tmp_path)
    add_voice(bundle, folder, name=f"{kind} one")
    meta = json.loads((bundle / "voices" / f"{kind}-one.json").read_text())
    assert meta["graph"] == f"{kind}-one.onnx" and meta["adapter_kind"] == kind
    tts = Synthesizer.load(bundle, threads=1)
    got = tts.mel(TEXT, voice=f"{kind} one")
    base = BaseModel.load("demo", precision="float32")
    expected = Voice.load(folder, base=base).mel(TEXT).numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4
    # the shared graph and the other voices are untouched
    assert "flite:rms" in tts.voices and tts.voice("flite:rms").graph is None


# ---- adding voices -------------------------------------------------------------------------
def test_add_voice_leaves_the_graphs_alone(demo_bundle, adapted, tmp_path, capsys):
    bundle = _copy(demo_bundle, tmp_path)
    graphs = {p.name: p.read_bytes() for p in bundle.glob("*.onnx")}
    second = shutil.copytree(adapted, tmp_path / "second-voice")
    from adavoice.cli.main import main

    main(["export", "--out", str(bundle), "--add-voice", str(second)])
    assert "added voice 'second-voice'" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in bundle.glob("*.onnx")} == graphs
    assert "second-voice" in Synthesizer.load(bundle).voices
    # the same name again is refused without --overwrite
    with pytest.raises(OutputError):
        add_voice(bundle, second)


def test_voice_for_another_base_is_refused(demo_bundle, tmp_path):
    folder = save_tiny_base(tmp_path / "other")
    _, tensors, config, voice = tiny_voice(folder)
    voice.save(tmp_path / "tiny-voice")
    bundle = _copy(demo_bundle, tmp_path)
    with pytest.raises(AdapterMismatchError):
        add_voice(bundle, tmp_path / "tiny-voice")
    # a voice file of another base copied in by hand: refused at load
    meta_path = bundle / "voices" / "flite-rms.json"
    meta = json.loads(meta_path.read_text())
    meta["base_weights_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(AdapterMismatchError, match="another base"):
        Synthesizer.load(bundle)


# ---- typed errors -------------------------------------------------------------------------
def test_damaged_graph_is_a_model_format_error(tiny_bundle, tmp_path):
    bundle = _copy(tiny_bundle, tmp_path)
    graph = bundle / "acoustic.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="checksum"):
        Synthesizer.load(bundle)
    graph.write_bytes(b"not a graph")
    config = json.loads((bundle / "bundle.json").read_text())
    config["graphs"]["acoustic"]["sha256"] = None  # no checksum: onnxruntime's own refusal
    (bundle / "bundle.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="onnxruntime cannot load"):
        Synthesizer.load(bundle)


def test_missing_voice_file_and_unknown_voice(tiny_bundle, tmp_path):
    bundle = _copy(tiny_bundle, tmp_path)
    tts = Synthesizer.load(bundle)
    assert tts.voices == ["one", "two"]
    with pytest.raises(UnknownSpeakerError, match="no voice 'three'"):
        tts.synthesize("Hello.", voice="three")
    (bundle / "voices" / "two.safetensors").unlink()
    with pytest.raises(MissingFileError, match="no tensors file"):
        Synthesizer.load(bundle)
    with pytest.raises(MissingFileError, match="no bundle.json"):
        Synthesizer.load(tmp_path)


def test_runtime_input_errors(tiny_bundle):
    tts = Synthesizer.load(tiny_bundle)
    with pytest.raises(EmptyTextError):
        tts.synthesize("   ", voice="one")
    with pytest.raises(ConfigError, match="length_scale"):
        tts.synthesize("Hello.", voice="one", length_scale=0)
    with pytest.raises(ConfigError, match="no 'universal' vocoder"):
        tts.synthesize("Hello.", voice="one", vocoder="universal")
    samples, rate = tts.synthesize("Hello. " * 80, voice="two")  # pieces joined
    assert rate == 22050 and samples.ndim == 1 and np.isfinite(samples).all()


def test_export_cli_errors_are_one_line(tiny_bundle, tmp_path, capsys):
    code, err = run_cli(["export", "--out", str(tiny_bundle), "--model",
                         str(tiny_bundle.parent / "model")], capsys)
    assert code == 1 and "already there" in one_line_error(err)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    code, err = run_cli(["export", "--out", str(tmp_path / "junk")], capsys)
    assert code == 1 and "holds no bundle" in one_line_error(err)
    code, err = run_cli(["export", "--out", str(tmp_path / "x"), "--device", "tpu"], capsys)
    assert code == 1 and "unknown device" in one_line_error(err)


# ---- the runtime alone ---------------------------------------------------------------------
def _no_torch_env(tmp_path: Path) -> dict:
    """An environment whose ``import torch`` (and torchaudio, librosa) fails."""
    blocker = tmp_path / "blocked"
    for name in ("torch", "torchaudio", "librosa"):
        (blocker / name).mkdir(parents=True, exist_ok=True)
        (blocker / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked in this test')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(REPO)])
    return env


def test_runtime_cli_runs_where_torch_cannot_import(tiny_bundle, tmp_path):
    env = _no_torch_env(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env,
                           capture_output=True, text=True)
    assert check.returncode != 0 and "blocked" in check.stderr
    out = tmp_path / "a.wav"
    run = subprocess.run([sys.executable, "-m", "adavoice.runtime", str(tiny_bundle),
                          "Hello there.", "--voice", "two", "--out", str(out)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    import soundfile as sf

    samples, rate = sf.read(out)
    assert rate == 22050 and len(samples) >= 256  # the random tiny base speaks short
    lines = tmp_path / "lines.txt"
    lines.write_text("One.\n\nTwo.\n")
    run = subprocess.run([sys.executable, "-m", "adavoice.runtime", str(tiny_bundle),
                          "--text-file", str(lines), "--out-dir", str(tmp_path / "many")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["0001.wav", "0002.wav"]
    for args, expected in ((["Hi.", "--voice", "nobody", "--out", str(tmp_path / "b.wav")],
                            "no voice 'nobody'"),
                           (["Hi.", "--voice", "two", "--out", str(out)], "exists")):
        run = subprocess.run([sys.executable, "-m", "adavoice.runtime", str(tiny_bundle), *args],
                             env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 1 and expected in one_line_error(run.stderr)


def test_threads_give_the_serial_audio(tiny_bundle):
    tts = Synthesizer.load(tiny_bundle, threads=1)
    jobs = [("Hello there.", "one"), ("A longer sentence, with a comma.", "two"),
            ("Third one here.", "one"), ("Numbers like 42 too.", "two")] * 2
    serial = [tts.synthesize(text, voice=voice)[0] for text, voice in jobs]
    results: list = [None] * len(jobs)

    def work(index):
        results[index] = tts.synthesize(jobs[index][0], voice=jobs[index][1])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, expected in zip(results, serial, strict=True):
        assert np.array_equal(got, expected)


RUNTIME_IMPORTS = """
import sys
from pathlib import Path
from adavoice.runtime import Synthesizer
from adavoice.runtime.__main__ import write_audio
tts = Synthesizer.load(sys.argv[1], threads=1)
samples, rate = tts.synthesize("I have 3 cats, Dr. Smith.", voice="one")
write_audio(Path(sys.argv[2]), samples, rate)
names = {m.split(".")[0] for m in sys.modules}
print(" ".join(sorted(n for n in names if n not in sys.stdlib_module_names
                      and not n.startswith("_") and n != "adavoice")))
"""


def test_runtime_needs_only_the_core_dependencies(tiny_bundle, tmp_path):
    """What the runtime imports is covered by the core install (pyproject's dependencies,
    without the ``sdk`` extra), so ``pip install adavoice`` is a working runtime."""
    import re
    from importlib.metadata import packages_distributions, requires

    tomllib = pytest.importorskip("tomllib")
    run = subprocess.run([sys.executable, "-c", RUNTIME_IMPORTS, str(tiny_bundle),
                          str(tmp_path / "a.wav")], env=_no_torch_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    modules = run.stdout.split()
    core = {re.split(r"[<>=\[ ]", d)[0].lower() for d in tomllib.loads(
        (REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert "torch" not in core and "onnxruntime" in core
    # the distributions those modules come from, and everything those pull in themselves
    allowed, todo = set(), list(core)
    while todo:
        dist = todo.pop().replace("_", "-")
        if dist in allowed:
            continue
        allowed.add(dist)
        try:
            needs = requires(dist) or []
        except Exception:  # not installed under that name: nothing more to follow
            needs = []
        todo += [re.split(r"[<>=!~;\[ ]", r)[0].lower() for r in needs if "extra ==" not in r]
    owners = packages_distributions()
    for module in modules:
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        assert dists & allowed, f"the runtime imports {module} ({dists}), not a core dependency"


def test_overwrite_swaps_the_whole_bundle(tiny_bundle, tmp_path):
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "voices" / "stray.json").write_text("{}")  # not in a fresh export
    export_bundle(tiny_bundle.parent / "model", bundle, vocoders=("fast",), overwrite=True)
    assert not (bundle / "voices" / "stray.json").exists()
    assert Synthesizer.load(bundle).voices == ["one", "two"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
