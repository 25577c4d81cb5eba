"""Issue 18 part 3: the across-band mel sharpening (adavoice.postfilter) -- exact on what it
promises, applied by the torch base and by the runtime before the universal vocoder only,
and a damaged setting is a typed error."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from adavoice.errors import ConfigError, ModelFormatError
from adavoice.postfilter import sharpen_mel, sharpen_mel_np
from tests.conftest import save_tiny_base


def _smooth(mel: torch.Tensor, width: int = 5) -> torch.Tensor:
    """The moving average over ``width`` bands, edges repeated, written out by hand."""
    n, half = mel.shape[0], width // 2
    rows = [mel[[min(max(j, 0), n - 1) for j in range(i - half, i + half + 1)]].mean(0)
            for i in range(n)]
    return torch.stack(rows)


def test_sharpening_scales_the_across_band_detail_and_nothing_else():
    torch.manual_seed(0)
    mel = torch.randn(80, 30) - 5
    smooth = _smooth(mel)
    sharp = sharpen_mel(mel, 1.5)
    assert torch.allclose(sharp, smooth + 1.5 * (mel - smooth), atol=1e-5)
    assert torch.equal(sharpen_mel(mel, 1.0), mel)  # off
    flat = torch.full((80, 4), -3.0)  # no detail across bands: nothing to sharpen
    assert torch.allclose(sharpen_mel(flat, 3.0), flat)
    batch = torch.stack([mel, mel * 0.5])
    assert torch.allclose(sharpen_mel(batch, 1.5)[0], sharp, atol=1e-6)
    assert np.abs(sharpen_mel_np(mel.numpy(), 1.5) - sharp.numpy()).max() < 1e-5
    assert np.abs(sharpen_mel_np(batch.numpy(), 2.0)[1]
                  - sharpen_mel(mel * 0.5, 2.0).numpy()).max() < 1e-5


@pytest.mark.parametrize("amount,width", [(0.5, 5), (9.0, 5), (1.5, 4), (1.5, 1)])
def test_bad_sharpening_is_a_config_error(amount, width):
    with pytest.raises(ConfigError):
        sharpen_mel(torch.zeros(80, 3), amount, width)
    with pytest.raises(ConfigError):
        sharpen_mel_np(np.zeros((80, 3), np.float32), amount, width)


def _base_with_sharpening(tmp_path, amount):
    folder = save_tiny_base(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["mel_sharpening"] = amount
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_the_base_sharpens_before_the_universal_vocoder_only(tmp_path, monkeypatch):
    from adavoice.config import SynthesisConfig
    from adavoice.models.base_model import BaseModel

    base = BaseModel.load(_base_with_sharpening(tmp_path, 1.5), precision="float32")
    assert base.cfg.to_dict()["mel_sharpening"] == 1.5
    assert base.mel_sharpening("universal") == 1.5 and base.mel_sharpening("auto") == 1.5
    assert base.mel_sharpening("griffin-lim") == 1.0 and base.mel_sharpening("fast") == 1.0
    heard = []

    def recorder(kind):
        return lambda mel: heard.append(mel.clone()) or torch.zeros((mel.shape[-1] - 1) * 256)

    monkeypatch.setattr(BaseModel, "vocoder", lambda self, kind="auto": recorder(kind))
    condition = base.model.speaker_condition(0)
    raw = base.mel("Hello there.", condition)
    base.render("Hello there.", condition, SynthesisConfig(vocoder="universal"))
    base.render("Hello there.", condition, SynthesisConfig(vocoder="griffin-lim"))
    assert torch.allclose(heard[0], sharpen_mel(raw, 1.5), atol=1e-5)
    assert torch.allclose(heard[1], raw, atol=1e-6)
    plain = BaseModel.load(save_tiny_base(tmp_path / "plain"), precision="float32")
    assert plain.mel_sharpening("universal") == 1.0
    assert "mel_sharpening" not in json.loads((tmp_path / "plain" / "config.json").read_text())


@pytest.mark.parametrize("amount", [0.2, "1.5", True, 40])
def test_a_damaged_sharpening_setting_is_a_model_format_error(tmp_path, amount):
    from adavoice.models.base_model import BaseModel

    with pytest.raises(ModelFormatError, match="sharpening"):
        BaseModel.load(_base_with_sharpening(tmp_path, amount))


def test_the_runtime_refuses_a_bundle_with_a_damaged_sharpening(tmp_path):
    from adavoice.config import MelConfig
    from adavoice.export.bundle import export_bundle
    from adavoice.models.vocoder import Vocoder, VocoderConfig
    from adavoice.runtime import Synthesizer

    folder = save_tiny_base(tmp_path / "tiny")
    torch.manual_seed(0)
    Vocoder(VocoderConfig.tiny()).save(folder / "vocoder", MelConfig())
    bundle = export_bundle(folder, tmp_path / "bundle", vocoders=("fast",))
    config = json.loads((bundle / "bundle.json").read_text())
    assert "mel_sharpening" not in config["graphs"]["vocoders"]["fast"]  # fast: never
    broken = shutil.copytree(bundle, tmp_path / "broken")
    config["graphs"]["vocoders"]["fast"]["mel_sharpening"] = "lots"
    (broken / "bundle.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="mel_sharpening"):
        Synthesizer.load(broken)


# ---- the learned post-filter (adavoice.models.mel_postfilter) --------------------------------


def _postfilter(seed: int = 0, base_hash: str | None = None, folder=None):
    """A small post-filter whose output layer is not zero (so it changes mels)."""
    from adavoice.models.mel_postfilter import MelPostfilter, MelPostfilterConfig

    torch.manual_seed(seed)
    net = MelPostfilter(MelPostfilterConfig(channels=4, layers=3))
    torch.nn.init.normal_(net.out.weight, std=0.05)
    if folder is not None:
        net.save(folder, {"base_weights_sha256": base_hash})
    return net.eval()


def test_a_new_post_filter_passes_mels_through_and_learns_on_a_tiny_overfit():
    from adavoice.models.mel_postfilter import MelPostfilter, MelPostfilterConfig

    torch.manual_seed(0)
    net = MelPostfilter(MelPostfilterConfig(channels=8, layers=3))
    mel = torch.randn(2, 80, 24) - 5
    assert torch.equal(net(mel), mel)  # the output layer starts at zero
    target = sharpen_mel(mel, 1.5, width=3)  # band detail to add: a local, learnable map
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss = (net(mel) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_a_post_filter_round_trips_and_a_damaged_one_is_a_typed_error(tmp_path):
    from adavoice.models.mel_postfilter import MelPostfilter, MelPostfilterConfig

    net = _postfilter(folder=tmp_path / "pf", base_hash="abc")
    loaded = MelPostfilter.from_dir(tmp_path / "pf")
    mel = torch.randn(80, 12) - 5
    with torch.no_grad():
        assert torch.allclose(loaded(mel), net(mel), atol=1e-6)
    assert loaded.provenance["base_weights_sha256"] == "abc"
    weights = tmp_path / "pf" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7] + b"garbage")
    with pytest.raises(ModelFormatError):
        MelPostfilter.from_dir(tmp_path / "pf")
    with pytest.raises(ConfigError):
        MelPostfilterConfig(kernel=4)


def _base_with_postfilter(tmp_path, name="model", sharpening=1.5):
    from adavoice.models.base_model import content_hash

    folder = _base_with_sharpening(tmp_path / name, sharpening)
    _postfilter(folder=folder / "postfilter", base_hash=content_hash(folder))
    return folder


def test_the_base_post_filters_before_the_universal_vocoder_instead_of_sharpening(
        tmp_path, monkeypatch):
    from adavoice.config import SynthesisConfig
    from adavoice.errors import AdapterMismatchError
    from adavoice.models.base_model import BaseModel

    base = BaseModel.load(_base_with_postfilter(tmp_path), precision="float32")
    net = base.mel_postfilter("universal")
    assert base.has_postfilter and net is not None and base.mel_postfilter("auto") is net
    assert base.mel_postfilter("griffin-lim") is None and base.mel_postfilter("fast") is None
    assert base.mel_sharpening("universal") == 1.0  # the post-filter replaces the sharpening
    heard = []
    monkeypatch.setattr(BaseModel, "vocoder", lambda self, kind="auto": (
        lambda mel: heard.append(mel.clone()) or torch.zeros((mel.shape[-1] - 1) * 256)))
    condition = base.model.speaker_condition(0)
    raw = base.mel("Hello there.", condition)
    base.render("Hello there.", condition, SynthesisConfig(vocoder="universal"))
    base.render("Hello there.", condition, SynthesisConfig(vocoder="griffin-lim"))
    with torch.no_grad():
        assert torch.allclose(heard[0], net(raw), atol=1e-5)
    assert not torch.allclose(heard[0], raw, atol=1e-3)
    assert torch.allclose(heard[1], raw, atol=1e-6)
    # one trained on another base is refused, by name
    other = _base_with_sharpening(tmp_path / "other", 1.0)
    _postfilter(folder=other / "postfilter", base_hash="0" * 64)
    with pytest.raises(AdapterMismatchError, match="post-filter"):
        BaseModel.load(other).mel_postfilter("universal")


def test_the_runtime_post_filters_as_the_torch_base_does(tmp_path, monkeypatch):
    from adavoice.config import MelConfig, SynthesisConfig
    from adavoice.export.bundle import export_bundle
    from adavoice.models import base_model
    from adavoice.models.base_model import BaseModel
    from adavoice.models.vocoder import Vocoder, VocoderConfig
    from adavoice.runtime import Synthesizer

    # the tiny base has only a fast vocoder to export: let the post-filter apply to it
    monkeypatch.setattr(base_model, "POSTFILTERED_RENDERERS", ("universal", "fast"))
    folder = _base_with_postfilter(tmp_path, sharpening=1.0)
    torch.manual_seed(0)
    Vocoder(VocoderConfig.tiny()).save(folder / "vocoder", MelConfig())
    bundle = export_bundle(folder, tmp_path / "bundle", vocoders=("fast",))
    entry = json.loads((bundle / "bundle.json").read_text())["graphs"]["vocoders"]["fast"]
    assert entry["postfilter"]["file"] == "postfilter.onnx"
    base = BaseModel.load(folder, precision="float32")
    expected = base.render("Hello there.", base.model.speaker_condition(0),
                           SynthesisConfig(vocoder="fast")).samples
    tts = Synthesizer.load(bundle, threads=1)
    got, _ = tts.synthesize("Hello there.", voice="one", vocoder="fast")
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-3
    plain = tts.vocode(tts.mel("Hello there.", voice="one"), "fast")
    assert np.abs(got - plain).max() > 1e-3  # the post-filter did something
    config = json.loads((bundle / "bundle.json").read_text())
    config["graphs"]["vocoders"]["fast"]["postfilter"] = "postfilter.onnx"
    broken = shutil.copytree(bundle, tmp_path / "broken")
    (broken / "bundle.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="post-filter"):
        Synthesizer.load(broken)
