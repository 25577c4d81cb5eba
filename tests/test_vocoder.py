"""Vocoder contracts: the iSTFT head inverts an STFT, the ONNX export matches torch, a tiny
vocoder learns one clip, the discriminators learn and their phase resumes exactly, and the
base/CLI pick the right renderer."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from adavoice.api import BaseModel
from adavoice.config import MelConfig
from adavoice.data.manifest import Manifest
from adavoice.data.readers import read_folder
from adavoice.errors import ConfigError, MissingFileError
from adavoice.export.vocoder import export_vocoder, parity_error
from adavoice.models.discriminators import VocoderCritic, critic_loss, generator_terms
from adavoice.models.griffin_lim import GriffinLim
from adavoice.models.vocoder import NeuralVocoder, Vocoder, VocoderConfig
from adavoice.nn.istft import ConvISTFT
from adavoice.train.loop import Critic, TrainConfig, Trainer
from adavoice.train.vocoder import VocoderTask, phase_losses, train_vocoder
from tests.conftest import save_tiny_base, tone, write_clips

VOICED = {"amplitude": 0.2, "harmonics": 5, "noise": 0.01}  # 5 harmonics and a little noise


def test_istft_head_reconstructs_a_signal_from_its_stft():
    wave = torch.from_numpy(tone(1.0, 160.0, **VOICED))[None, : 256 * 60]
    window = torch.hann_window(1024)
    spec = torch.stft(wave, 1024, 256, window=window, return_complex=True)
    rebuilt = ConvISTFT(1024, 256)(spec.abs(), torch.angle(spec))
    reference = torch.istft(spec, 1024, 256, window=window, length=rebuilt.shape[-1])
    assert rebuilt.shape[-1] == 256 * 60
    assert torch.allclose(rebuilt, reference, atol=1e-5)
    assert float((rebuilt - wave[:, : rebuilt.shape[-1]]).abs().max()) < 1e-4


@pytest.mark.parametrize("phase_head", ["angle", "vector"])
def test_onnx_export_matches_torch(tmp_path, phase_head):
    torch.manual_seed(0)
    vocoder = Vocoder(VocoderConfig.tiny(phase_head=phase_head)).eval()
    path = export_vocoder(vocoder, tmp_path / "vocoder.onnx")
    for frames in (9, 57):  # dynamic length
        assert parity_error(vocoder, path, torch.randn(2, 80, frames)) < 1e-4


def test_vector_phase_head_states_the_phase_as_a_direction():
    torch.manual_seed(0)
    vocoder = Vocoder(VocoderConfig.tiny(phase_head="vector")).eval()
    mel = torch.randn(1, 80, 12)
    magnitude, phase = vocoder.spectrum(mel)
    _, cos, sin = vocoder.components(mel)
    assert torch.allclose(cos ** 2 + sin ** 2, torch.ones_like(cos), atol=1e-5)
    assert torch.allclose(vocoder(mel), vocoder.istft(magnitude, phase), atol=1e-5)
    with pytest.raises(ConfigError):
        VocoderConfig(phase_head="polar")
    with pytest.raises(ConfigError, match="negative"):
        VocoderTask(VocoderConfig.tiny(), MelConfig(), phase_weight=-1.0)


def test_tiny_vocoder_overfits_one_clip():
    torch.manual_seed(0)
    task = VocoderTask(VocoderConfig.tiny(), MelConfig())
    wave = torch.from_numpy(tone(1.0, 160.0, **VOICED))[None, : 256 * 32]
    optimizer = torch.optim.Adam(task.vocoder.parameters(), lr=2e-3)
    first = None
    for _ in range(60):
        losses = task(wave)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        first = first if first is not None else float(losses["loss"].detach())
    assert float(task(wave)["loss"]) < 0.7 * first


def test_phase_losses_measure_wrapped_distance_and_ignore_what_they_should():
    torch.manual_seed(0)
    target = (torch.rand(2, 9, 12) * 2 - 1) * torch.pi
    zero = phase_losses(target + 2 * torch.pi * torch.randint(-3, 4, target.shape), target)
    assert all(float(v) < 1e-5 for v in zero.values())  # whole turns are no error
    shifted = phase_losses(target + 0.5, target)  # a constant offset: only the phase sees it
    assert abs(float(shifted["instantaneous"]) - 0.5) < 1e-5
    assert float(shifted["group_delay"]) < 1e-5 and float(shifted["frequency"]) < 1e-5
    delay = phase_losses(target + 0.3 * torch.arange(9.0).view(1, 9, 1), target)
    assert abs(float(delay["group_delay"]) - 0.3) < 1e-5 and float(delay["frequency"]) < 1e-5
    opposite = phase_losses(target + torch.pi - 0.1, target)["instantaneous"]
    assert abs(float(opposite) - (torch.pi - 0.1)) < 1e-4  # never more than pi
    # weighted: errors where the weight is zero do not count
    wrong_bins = torch.zeros_like(target)
    wrong_bins[:, 4:] = 1.0
    weight = 1.0 - wrong_bins
    weighted = phase_losses(target + 2.0 * wrong_bins, target, weight)
    assert all(float(v) < 1e-5 for v in weighted.values())
    assert float(phase_losses(target + 2.0 * wrong_bins, target)["instantaneous"]) > 1.0


@pytest.mark.parametrize("phase_head", ["angle", "vector"])
def test_phase_supervision_teaches_a_tiny_vocoder_the_real_phase(phase_head):
    wave = torch.from_numpy(tone(1.0, 160.0, **VOICED))[None, : 256 * 32]
    real = torch.stft(wave, 1024, 256, window=torch.hann_window(1024), return_complex=True)

    def phase_error_after(steps, phase_weight):
        torch.manual_seed(0)
        task = VocoderTask(VocoderConfig.tiny(phase_head=phase_head), MelConfig(),
                           phase_weight=phase_weight)
        assert ("phase_loss" in task(wave)) == (phase_weight > 0)
        optimizer = torch.optim.Adam(task.vocoder.parameters(), lr=3e-3)
        for _ in range(steps):
            losses = task(wave)
            optimizer.zero_grad()
            losses["loss"].backward()
            optimizer.step()
        with torch.no_grad():
            _, phase = task.vocoder.spectrum(task.frontend(wave))
        return float(sum(phase_losses(phase, torch.angle(real)).values()))

    untrained = phase_error_after(0, 1.0)
    assert untrained > 3 * torch.pi / 2 - 0.2  # no better than random phases
    supervised, unsupervised = phase_error_after(80, 1.0), phase_error_after(80, 0.0)
    # magnitude losses alone leave the phase nearly where it was; the phase losses move it
    assert supervised < 0.9 * untrained and supervised < unsupervised - 0.4


def _clips(count=4, samples=256 * 8):
    return torch.from_numpy(np.stack([tone(0.4, 120 + 30 * i, seed=i, **VOICED)[:samples]
                                      for i in range(count)]))


def test_discriminators_learn_real_from_generated_and_pass_gradients():
    torch.manual_seed(0)
    critic = VocoderCritic.for_preset("tiny")
    real = _clips(2)
    fake = 0.05 * torch.randn_like(real)
    optimizer = torch.optim.AdamW(critic.parameters(), lr=2e-3)
    first = None
    for _ in range(30):
        loss = critic_loss(critic, real, fake)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else float(loss)
    assert float(critic_loss(critic, real, fake)) < 0.5 * first
    same = generator_terms(critic, real, real.clone())
    assert float(same["feature_loss"]) == 0.0  # identical audio: nothing to match
    fake = fake.clone().requires_grad_()
    terms = generator_terms(critic, real, fake)
    (terms["adversarial_loss"] + terms["feature_loss"]).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0


def _adversarial_trainer(out, interrupt_at=None):
    torch.manual_seed(0)
    task = VocoderTask(VocoderConfig.tiny(), MelConfig())
    critic = Critic(VocoderCritic.for_preset("tiny"),
                    loss_fn=lambda net, o: critic_loss(net, o["_real"], o["_fake"]),
                    model_terms=lambda net, o: generator_terms(net, o["_real"], o["_fake"]),
                    weights={"adversarial_loss": 1.0, "feature_loss": 2.0},
                    learning_rate=1e-3, warmup_steps=2)
    waves = _clips(4)

    def step(net, batch, index):
        if index == interrupt_at:
            raise KeyboardInterrupt
        return net(batch, 45.0)

    cfg = TrainConfig(steps=6, warmup_steps=1, log_every=1, checkpoint_every=100,
                      validate_every=10**9)
    return Trainer(task, step, lambda epoch: [[0, 1], [2, 3]], lambda idx: waves[idx], cfg,
                   out, params=list(task.vocoder.parameters()), critic=critic)


def test_adversarial_phase_resumes_exactly(tmp_path):
    import csv

    def curves(folder):
        with (folder / "curves.csv").open() as fh:
            return {int(r["step"]): r for r in csv.DictReader(fh)}

    _adversarial_trainer(tmp_path / "a").run(progress=False)
    interrupted = _adversarial_trainer(tmp_path / "b", interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run(progress=False)
    resumed = _adversarial_trainer(tmp_path / "b")
    resumed.resume()
    resumed.run(progress=False)
    expected, got = curves(tmp_path / "a"), curves(tmp_path / "b")
    assert sorted(got) == sorted(expected) == list(range(1, 7))
    # the critic learns from step 0; its terms join the vocoder's loss after 2 warm-up steps
    assert np.isnan(float(expected[2]["adversarial_loss"]))
    assert float(expected[3]["adversarial_loss"]) > 0
    for step in range(4, 7):
        for key in ("loss", "critic_loss", "adversarial_loss", "feature_loss"):
            assert float(got[step][key]) == pytest.approx(float(expected[step][key]),
                                                          rel=1e-5), (step, key)


def test_a_critic_cannot_join_a_run_mid_way(tmp_path):
    from adavoice.errors import CheckpointError

    plain = _adversarial_trainer(tmp_path)
    plain.critic = None  # a reconstruction-only run's checkpoint
    plain.save()
    with pytest.raises(CheckpointError, match="without a critic"):
        _adversarial_trainer(tmp_path).resume()


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocoder-corpus")
    write_clips(root, 4, name="u{}", seconds=0.6, freq_hz=120.0, step_hz=30.0, **VOICED)
    Manifest(read_folder(root), root).save(root)
    return root


def test_train_vocoder_writes_a_loadable_release_and_init_fine_tunes(tiny_corpus, tmp_path):
    cfg = TrainConfig(steps=3, warmup_steps=1, log_every=1, validate_every=10**9)
    first = train_vocoder(tiny_corpus, tmp_path / "v1", preset="tiny", batch_size=2,
                          segment_frames=8, train_cfg=cfg, progress=False)
    model, mel = Vocoder.from_dir(first)
    assert mel == MelConfig() and model.cfg == VocoderConfig.for_mel("tiny", MelConfig())
    second = train_vocoder(tiny_corpus, tmp_path / "v2", init=first, batch_size=2,
                           segment_frames=8, train_cfg=cfg, progress=False)
    assert Vocoder.from_dir(second)[0].cfg == model.cfg
    third = train_vocoder(tiny_corpus, tmp_path / "v3", init=first, batch_size=2,
                          segment_frames=8, train_cfg=cfg, progress=False, adversarial=True,
                          critic_warmup=1)
    assert Vocoder.from_dir(third)[0].cfg == model.cfg
    adversarial = json.loads((third / "config.json").read_text())["training"]["adversarial"]
    assert adversarial["critic"] == "tiny" and adversarial["final_adversarial_loss"] > 0
    assert not any("discriminators" in k for k in load_file(third / "model.safetensors"))
    with pytest.raises(ConfigError, match="phase head"):  # a fine-tune keeps its head
        train_vocoder(tiny_corpus, tmp_path / "v4", init=first, phase_head="angle",
                      batch_size=2, segment_frames=8, train_cfg=cfg, progress=False)
    fourth = train_vocoder(tiny_corpus, tmp_path / "v5", preset="tiny", phase_head="angle",
                           phase_weight=1.0, phase_weighting="magnitude", magnitude_weight=1.0,
                           batch_size=2, segment_frames=8, train_cfg=cfg, progress=False)
    assert Vocoder.from_dir(fourth)[0].cfg.phase_head == "angle"
    training = json.loads((fourth / "config.json").read_text())["training"]
    assert training["final_phase_loss"] > 0 and training["final_head_magnitude_loss"] > 0


def test_base_model_picks_the_renderer(tmp_path):
    from adavoice.models.acoustic import AcousticModel
    from adavoice.models.base_model import load_base_model, save_base_model

    folder = save_tiny_base(tmp_path / "base", speakers=["a"], tokenizer="graphemes")
    cfg = load_base_model(folder)[1]
    acoustic = cfg.acoustic
    from adavoice.models.universal import HiFiGANRenderer

    base = BaseModel.load(folder)
    assert isinstance(base.vocoder("auto"), HiFiGANRenderer)  # nothing declared: universal
    assert isinstance(base.vocoder("universal"), HiFiGANRenderer)
    with pytest.raises(MissingFileError, match="no fast vocoder"):
        base.vocoder("fast")
    with pytest.raises(ConfigError):
        base.vocoder("wavenet")
    Vocoder(VocoderConfig.tiny()).save(folder / "vocoder", MelConfig())
    for declared, renderer in [("fast", NeuralVocoder), ("griffin-lim", GriffinLim)]:
        save_base_model(folder, AcousticModel(acoustic),
                        dataclasses.replace(cfg, auto_vocoder=declared))
        base = BaseModel.load(folder)
        assert isinstance(base.vocoder("auto"), renderer)  # auto: what the base declares
    assert isinstance(base.vocoder("griffin-lim"), GriffinLim)
    for seed in range(4):  # untrained: some seeds predict no frame at all; audio even then
        torch.manual_seed(seed)
        base.model.load_state_dict(AcousticModel(acoustic).state_dict())
        wave = base.synthesize("a cat")
        assert wave.samples.ndim == 1 and wave.samples.size >= 256
        assert np.abs(wave.samples).max() <= 1.0

    from adavoice.cli.main import main

    sf.write(tmp_path / "in.flac", tone(0.5, 160.0, **VOICED), 22050)
    (tmp_path / "clips").mkdir()
    (tmp_path / "in.flac").rename(tmp_path / "clips" / "in.flac")
    main(["vocode", str(tmp_path / "clips"), str(tmp_path / "out"), "--model", str(folder)])
    main(["vocode", str(tmp_path / "clips"), str(tmp_path / "gl"), "--model", str(folder),
          "--vocoder", "griffin-lim"])
    for sub in ("out", "gl"):
        info = sf.info(tmp_path / sub / "in.flac")
        assert info.samplerate == 22050 and abs(info.duration - 0.5) < 0.02
