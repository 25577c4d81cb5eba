"""Shrinking the teacher (issue 18 part 2): a narrower HiFi-GAN made of the teacher's strongest
channels, refitted layer by layer, shipped as a base's ``fast`` vocoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adavoice.api import BaseModel
from adavoice.errors import ConfigError, ModelFormatError
from adavoice.models.hifigan import HiFiGAN, HiFiGANConfig
from adavoice.models.prune import channel_strengths, prune_generator, refit
from adavoice.models.universal import HiFiGANRenderer
from adavoice.models.vocoder import load_renderer
from tests.conftest import save_tiny_base


def _teacher(seed: int = 0) -> HiFiGAN:
    torch.manual_seed(seed)
    return HiFiGAN(HiFiGANConfig.tiny(resblock_kernel_sizes=(3, 5))).eval()


def _mels(count: int, frames: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 80, frames, generator=generator) - 5.0


def test_keeping_every_channel_reproduces_the_teacher():
    teacher = _teacher()
    student = prune_generator(teacher, teacher.cfg.channels, _mels(2, 12, 0))
    mel = _mels(1, 15, 1)
    with torch.no_grad():
        assert torch.equal(student(mel), teacher(mel))


def test_the_strongest_channels_are_kept_in_order():
    teacher = _teacher()
    with torch.no_grad():  # make stream channel 5 of conv_pre the loudest by far
        teacher.conv_pre.bias[5] = 50.0
    mels = _mels(2, 12, 0)
    strengths = channel_strengths(teacher, mels)
    assert int(strengths["stream"][0].argmax()) == 5
    student = prune_generator(teacher, (4, 8, 4, 2, 1), mels)
    kept = torch.topk(strengths["stream"][0], 4).indices.sort().values
    assert 5 in kept.tolist()
    assert torch.equal(student.conv_pre.weight, teacher.conv_pre.weight[kept])
    assert torch.equal(student.conv_pre.bias, teacher.conv_pre.bias[kept])


def _with_dead_channels(teacher: HiFiGAN, widths: tuple, seed: int) -> HiFiGAN:
    """``teacher`` with all but ``widths`` channels of every stage (and as many hidden channels
    of every residual pair) silenced: what produces them is zero, so they stay zero."""
    rng = torch.Generator().manual_seed(seed)

    def dropped(total: int, kept: int) -> torch.Tensor:
        return torch.randperm(total, generator=rng)[:total - kept]

    per_stage = len(teacher.cfg.resblock_kernel_sizes)
    with torch.no_grad():
        gone = dropped(teacher.cfg.channels[0], widths[0])
        teacher.conv_pre.weight[gone] = 0.0
        teacher.conv_pre.bias[gone] = 0.0
        for stage, upsample in enumerate(teacher.ups):
            gone = dropped(teacher.cfg.channels[stage + 1], widths[stage + 1])
            upsample.weight[:, gone] = 0.0
            upsample.bias[gone] = 0.0
            for block in teacher.resblocks[stage * per_stage:(stage + 1) * per_stage]:
                for dilated, plain in zip(block.convs1, block.convs2, strict=True):
                    plain.weight[gone] = 0.0
                    plain.bias[gone] = 0.0
                    hidden = dropped(dilated.out_channels, widths[stage + 1])
                    dilated.weight[hidden] = 0.0
                    dilated.bias[hidden] = 0.0
    return teacher


def test_pruning_away_silent_channels_changes_nothing():
    # every slice of every layer must pick the same channels on both of its sides
    widths = (20, 9, 5, 3, 1)
    teacher = _with_dead_channels(_teacher(), widths, seed=3)
    student = prune_generator(teacher, widths, _mels(2, 16, 0))
    mel = _mels(1, 20, 1)
    with torch.no_grad():
        expected, got = teacher(mel), student(mel)
    assert expected.abs().max() > 1e-4
    assert torch.allclose(got, expected, atol=1e-6)


def test_bad_calibration_and_refit_without_pruning_are_refused():
    teacher = _teacher()
    for bad in (torch.randn(80, 12), torch.randn(2, 64, 12)):
        with pytest.raises(ConfigError, match="calibration mels"):
            prune_generator(teacher, (16, 8, 4, 2, 1), bad)
    with pytest.raises(ConfigError, match="prune_generator"):
        refit(teacher, HiFiGAN(HiFiGANConfig.tiny(stage_channels=(16, 8, 4, 2, 1))),
              _mels(2, 12, 0))
    half = prune_generator(teacher.half(), (16, 8, 4, 2, 1), _mels(2, 12, 0).half())
    assert half.conv_pre.weight.dtype == torch.float32


def test_refitting_brings_the_student_closer_to_the_teacher():
    teacher = _teacher()
    calibration, other = _mels(4, 40, 0), _mels(2, 30, 1)
    pruned = prune_generator(teacher, (24, 12, 6, 3, 2), calibration)
    before = pruned(other)
    refitted = refit(teacher, prune_generator(teacher, (24, 12, 6, 3, 2), calibration),
                     calibration)
    with torch.no_grad():
        target = teacher(other)
        error_before = float((before - target).pow(2).mean())
        error_after = float((refitted(other) - target).pow(2).mean())
    assert error_after < 0.5 * error_before


def test_channel_counts_are_checked():
    teacher = _teacher()
    with pytest.raises(ConfigError, match="cannot keep"):
        prune_generator(teacher, (64, 8, 4, 2, 1), _mels(1, 12, 0))
    with pytest.raises(ConfigError, match="needs 5 counts"):
        prune_generator(teacher, (16, 8), _mels(1, 12, 0))
    with pytest.raises(ConfigError, match="one count for conv_pre"):
        HiFiGANConfig(stage_channels=(16, 8))
    with pytest.raises(ConfigError, match="positive"):
        HiFiGANConfig(stage_channels=(16, 8, 0, 2, 1))
    with pytest.raises(ConfigError, match="whole numbers"):
        HiFiGANConfig(stage_channels=(16, 8.5, 4, 2, 1))
    assert HiFiGANConfig(stage_channels=[16, 8, 4, 2, 1]).stage_channels == (16, 8, 4, 2, 1)


def test_an_unshrunk_config_is_written_as_before():
    # caches written by this version stay readable by versions without stage_channels
    data = HiFiGANConfig().to_dict()
    assert "stage_channels" not in data
    assert HiFiGANConfig.from_dict(data) == HiFiGANConfig()


def test_a_shrunk_generator_round_trips_through_safetensors(tmp_path):
    teacher = _teacher()
    student = prune_generator(teacher, (16, 8, 4, 2, 1), _mels(2, 12, 0))
    student.save(tmp_path / "fast", {"note": "test"})
    config = json.loads((tmp_path / "fast" / "config.json").read_text())
    assert config["generator"]["stage_channels"] == [16, 8, 4, 2, 1]
    loaded = HiFiGAN.from_dir(tmp_path / "fast")
    mel = _mels(1, 10, 2)
    with torch.no_grad():
        assert torch.equal(loaded(mel), student(mel))


@pytest.fixture(scope="module")
def base_with_shrunk_fast(tmp_path_factory):
    folder = save_tiny_base(tmp_path_factory.mktemp("shrunk") / "model")
    student = prune_generator(_teacher(), (16, 8, 4, 2, 1), _mels(2, 12, 0))
    student.save(folder / "vocoder", {"note": "test"}, half=True)  # as a base ships it
    return folder


def test_a_base_ships_a_shrunk_hifigan_as_its_fast_vocoder(base_with_shrunk_fast):
    base = BaseModel.load(base_with_shrunk_fast)
    renderer = base.vocoder("fast")
    assert isinstance(renderer, HiFiGANRenderer)
    audio = base.synthesize("Hello there.", vocoder="fast")
    assert audio.sample_rate == 22050 and len(audio.samples) > 0
    assert np.isfinite(audio.samples).all()


def test_a_fast_vocoder_for_another_front_end_is_refused(tmp_path):
    from adavoice.config import MelConfig

    HiFiGAN(HiFiGANConfig.tiny(n_mels=64)).save(tmp_path / "v", {"note": "test"})
    with pytest.raises(ModelFormatError, match="another mel front end"):
        load_renderer(tmp_path / "v", MelConfig())
    other = MelConfig(fmax_hz=7600.0)  # same bands and hop, another front end
    HiFiGAN(HiFiGANConfig.tiny()).save(tmp_path / "u", {"mel": other.to_dict()})
    assert isinstance(load_renderer(tmp_path / "u", other), HiFiGANRenderer)
    with pytest.raises(ModelFormatError, match="another mel front end"):
        load_renderer(tmp_path / "u", MelConfig())
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelFormatError):
        load_renderer(tmp_path / "w", MelConfig())
    (tmp_path / "w" / "config.json").write_text('{"kind": "adavoice-acoustic"}')
    with pytest.raises(ModelFormatError, match="adavoice-hifigan"):
        load_renderer(tmp_path / "w", MelConfig())


def test_the_shrunk_fast_vocoder_exports_and_runs_without_torch(base_with_shrunk_fast,
                                                                 tmp_path):
    from adavoice.export.bundle import export_bundle
    from adavoice.runtime import Synthesizer

    bundle = export_bundle(base_with_shrunk_fast, tmp_path / "bundle", vocoders=("fast",))
    entry = json.loads((bundle / "bundle.json").read_text())["graphs"]["vocoders"]["fast"]
    assert entry["pass_frames"] and entry["context_frames"] > 0
    assert entry["parity_max_abs"] < 1e-4
    runtime = Synthesizer.load(bundle, threads=1)
    samples, rate = runtime.synthesize("Hello there.", vocoder="fast")
    assert rate == 22050 and len(samples) > 0 and np.isfinite(samples).all()
    mel = _mels(1, 300, 3)[0]  # longer than one pass: windows as the torch renderer cuts them
    renderer = BaseModel.load(base_with_shrunk_fast).vocoder("fast")
    renderer.pass_frames = tuple(entry["pass_frames"])  # the bundle's grid, not torch's windows
    expected = renderer(mel).numpy()
    got = runtime.vocode(mel.numpy(), vocoder="fast")
    assert got.shape == expected.shape == (299 * 256,)
    assert float(np.abs(got - expected).max()) < 1e-3
