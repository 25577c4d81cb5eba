"""A voice's own post-filter values (adavoice.adaptation.postfilter): tuned at adaptation on
the voice's clips, stored in its bundle, applied by the torch base and by the runtime, and
refused when they do not belong to the base's post-filter."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import adavoice
from adavoice.adaptation.config import AdapterConfig
from adavoice.api import BaseModel, Voice
from adavoice.config import SynthesisConfig
from adavoice.errors import AdapterMismatchError, ConfigError, ModelFormatError
from adavoice.models.base_model import content_hash, load_base_model
from adavoice.models.mel_postfilter import (
    CRITIC_DIR,
    VOICE_PREFIX,
    MelCritic,
    MelPostfilter,
    MelPostfilterConfig,
)
from adavoice.models.speech_encoder import SpeechEncoder, SpeechEncoderConfig
from tests.conftest import save_tiny_base, write_clips

SENTENCES = ["the cat sat on the mat", "a dog ran home", "we like green tea",
             "it is a fine day", "she reads a book", "they walk to school"]


def _install_postfilter(folder, seed=0, critic=True):
    torch.manual_seed(seed)
    net = MelPostfilter(MelPostfilterConfig(channels=4, layers=3))
    torch.nn.init.normal_(net.out.weight, std=0.05)
    net.save(folder / "postfilter", {"base_weights_sha256": content_hash(folder)})
    if critic:
        MelCritic(channels=(4, 8), center=net.cfg.center,
                  scale=net.cfg.scale).save(folder / "postfilter" / CRITIC_DIR)
    return net


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("voice-pf")
    base_dir = save_tiny_base(root / "base", speakers=["a", "b"], tokenizer="graphemes")
    acoustic = load_base_model(base_dir)[1].acoustic
    SpeechEncoder(SpeechEncoderConfig.for_base(acoustic, speaker_free=True)).save(
        base_dir / "mel_encoder")
    _install_postfilter(base_dir)
    clips = write_clips(root / "clips", SENTENCES, transcripts="metadata", name="clip{:02d}",
                        seconds=0.8, freq_hz=140, overtone=0.1)
    return {"base": base_dir, "clips": clips, "root": root}


def _config(kind="cln", **kw):
    return AdapterConfig.for_kind(kind, steps=3, batch_size=3, validation_clips=2,
                                  validate_every=3, postfilter_steps=kw.pop("postfilter_steps", 6),
                                  postfilter_batch=2, postfilter_segment=16,
                                  postfilter_learning_rate=3e-3, **kw)


@pytest.mark.parametrize("kind,untranscribed", [("cln", False), ("cln", True),
                                                ("lora", False)])
def test_a_voice_tunes_its_own_post_filter_values_and_keeps_them(setup, tmp_path, kind,
                                                                   untranscribed):
    base = BaseModel.load(setup["base"], precision="float32")
    shared = base.mel_postfilter("universal")
    before = {k: v.clone() for k, v in shared.state_dict().items()}
    voice = adavoice.adapt(base, setup["clips"], config=_config(kind=kind),
                           untranscribed=untranscribed, progress=False)
    record = voice.config["postfilter"]
    assert record["steps"] == 6 and record["tuned_numbers"] == 4 * 2 + 4 * 9 + 1
    assert record["base_postfilter_sha256"] == json.loads(
        (setup["base"] / "postfilter" / "config.json").read_text())["weights_sha256"]
    own = voice.condition.postfilter
    assert sorted(own) == sorted(shared.voice_tensors())
    assert any(not torch.allclose(own[k], v) for k, v in shared.voice_tensors().items())
    assert all(torch.equal(v, before[k]) for k, v in shared.state_dict().items())  # base kept
    assert voice.config["stored_parameters"] == voice.stored_parameters == sum(
        v.numel() for v in voice.tensors.values())  # counted with the rest
    assert all(f"{VOICE_PREFIX}{k}" in voice.tensors for k in own)
    # saved and loaded: the same values, applied before the universal vocoder only
    loaded = Voice.load(voice.save(tmp_path / "v"), base=base)
    assert all(torch.equal(loaded.condition.postfilter[k], own[k]) for k in own)
    mel = torch.randn(80, 30) - 5
    with torch.no_grad():
        mine = base.mel_filter("universal", loaded.condition)(mel)
        assert torch.allclose(mine, shared(mel, own), atol=1e-6)
        assert not torch.allclose(mine, shared(mel), atol=1e-4)
        assert torch.equal(base.mel_filter("griffin-lim", loaded.condition)(mel), mel)


def test_what_keeps_a_voice_from_its_own_values(setup, tmp_path):
    base = BaseModel.load(setup["base"], precision="float32")
    off = adavoice.adapt(base, setup["clips"], config=_config(postfilter_steps=0),
                         progress=False)
    assert off.config["postfilter"] == {"skipped": "postfilter_steps is 0"}
    assert off.condition.postfilter is None
    assert not any(k.startswith(VOICE_PREFIX) for k in off.tensors)
    # a base whose post-filter ships no critic: the base's values, and the reason recorded
    bare = shutil.copytree(setup["base"], tmp_path / "bare")
    shutil.rmtree(bare / "postfilter" / CRITIC_DIR)
    voice = adavoice.adapt(BaseModel.load(bare), setup["clips"], config=_config(),
                           progress=False)
    assert "critic" in voice.config["postfilter"]["skipped"]
    assert voice.condition.postfilter is None
    with pytest.raises(ConfigError):
        AdapterConfig.for_kind("cln", postfilter_steps=-1)
    assert AdapterConfig.for_kind("cln").postfilter_steps == 0  # opt-in (BENCHMARKS.md)


def test_values_for_another_post_filter_are_refused_and_bad_ones_are_typed(setup, tmp_path):
    base_dir = shutil.copytree(setup["base"], tmp_path / "base")
    voice = adavoice.adapt(BaseModel.load(base_dir), setup["clips"], config=_config(),
                           progress=False)
    folder = voice.save(tmp_path / "voice")
    # the base's post-filter retrained since: the voice's values are for another filter
    _install_postfilter(base_dir, seed=1)
    with pytest.raises(AdapterMismatchError, match="post-filter"):
        Voice.load(folder, base=BaseModel.load(base_dir))
    # the base without its post-filter: nothing to apply them to, the voice still speaks
    shutil.rmtree(base_dir / "postfilter")
    plain = Voice.load(folder, base=BaseModel.load(base_dir))
    assert plain.condition.postfilter is None
    assert plain.synthesize("a cat", vocoder="griffin-lim").samples.size > 0
    # values of the wrong shape are a ModelFormatError when the voice is loaded
    other = shutil.copytree(setup["base"], tmp_path / "other")
    tensors = dict(voice.tensors)
    tensors[f"{VOICE_PREFIX}out.bias"] = torch.zeros(3)
    with pytest.raises(ModelFormatError, match="post-filter"):
        Voice(BaseModel.load(other), tensors, voice.config)
    tensors[f"{VOICE_PREFIX}out.bias"] = torch.full((1,), float("nan"))
    with pytest.raises(ModelFormatError):
        Voice(BaseModel.load(other), tensors, voice.config)


def test_the_runtime_feeds_each_voice_its_own_post_filter_values(setup, tmp_path, monkeypatch):
    from adavoice.config import MelConfig
    from adavoice.export.bundle import export_bundle
    from adavoice.models import base_model
    from adavoice.models.vocoder import Vocoder, VocoderConfig
    from adavoice.runtime import Synthesizer

    # the tiny base has only a fast vocoder to export: let the post-filter apply to it
    monkeypatch.setattr(base_model, "POSTFILTERED_RENDERERS", ("universal", "fast"))
    base_dir = shutil.copytree(setup["base"], tmp_path / "base")
    torch.manual_seed(0)
    Vocoder(VocoderConfig.tiny()).save(base_dir / "vocoder", MelConfig())
    base = BaseModel.load(base_dir, precision="float32")
    voice = adavoice.adapt(base, setup["clips"], config=_config(), progress=False)
    folder = voice.save(tmp_path / "voice")
    bundle = export_bundle(base_dir, tmp_path / "bundle", vocoders=("fast",), voices=[folder],
                           names=["mine"], speakers=["a"])
    tts = Synthesizer.load(bundle, threads=1)
    for name, condition in (("mine", voice.condition), ("a", base.model.speaker_condition(0))):
        expected = base.render("a cat sat", condition, SynthesisConfig(vocoder="fast")).samples
        got, _ = tts.synthesize("a cat sat", voice=name, vocoder="fast")
        assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-3
    entry = json.loads((bundle / "bundle.json").read_text())["graphs"]["vocoders"]["fast"]
    assert entry["postfilter"]["weights_sha256"] == voice.config["postfilter"][
        "base_postfilter_sha256"]
    # the base's post-filter retrained since the export: its voices cannot join the bundle
    from adavoice.export.bundle import add_voice

    retrained = shutil.copytree(base_dir, tmp_path / "retrained")
    _install_postfilter(retrained, seed=3)
    again = adavoice.adapt(BaseModel.load(retrained), setup["clips"], config=_config(),
                           progress=False).save(tmp_path / "again")
    with pytest.raises(AdapterMismatchError, match="post-filter"):
        add_voice(bundle, again, name="again", model=retrained)
    # a voice file without the post-filter inputs the graph takes: a typed error, by name
    stale = shutil.copytree(bundle, tmp_path / "stale")
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(stale / "voices" / "mine.safetensors"))
    save_file({k: v for k, v in tensors.items() if not k.startswith(VOICE_PREFIX)},
              str(stale / "voices" / "mine.safetensors"))
    meta_path = stale / "voices" / "mine.json"
    meta = json.loads(meta_path.read_text())
    import hashlib

    meta["tensors_sha256"] = hashlib.sha256(
        (stale / "voices" / "mine.safetensors").read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="post-filter inputs"):
        Synthesizer.load(stale, threads=1).synthesize("a cat", voice="mine", vocoder="fast")
    # ... or with inputs of the wrong shape
    tensors["postfilter.out.bias"] = np.zeros(3, np.float32)
    save_file(tensors, str(stale / "voices" / "mine.safetensors"))
    meta["tensors_sha256"] = hashlib.sha256(
        (stale / "voices" / "mine.safetensors").read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="wrong shape"):
        Synthesizer.load(stale, threads=1).synthesize("a cat", voice="mine", vocoder="fast")


def test_the_cli_tunes_and_reports_the_voices_own_values(setup, tmp_path, capsys):
    from adavoice.cli.main import main
    from tests.conftest import run_cli

    out = tmp_path / "voice"
    main(["adapt", str(setup["clips"]), "--model", str(setup["base"]), "--out", str(out),
          "--steps", "2", "--postfilter-steps", "2"])
    assert "own post-filter values: 45 numbers, 2 steps" in capsys.readouterr().out
    assert Voice.load(out, base=setup["base"]).config["postfilter"]["steps"] == 2
    main(["adapt", str(setup["clips"]), "--model", str(setup["base"]), "--out",
          str(tmp_path / "off"), "--steps", "2", "--postfilter-steps", "0"])
    assert "post-filter" not in capsys.readouterr().out
    code, err = run_cli(["adapt", setup["clips"], "--model", setup["base"], "--out",
                         tmp_path / "bad", "--postfilter-steps", "-3"], capsys)
    assert code == 1 and "postfilter_steps" in err
