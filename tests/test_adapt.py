"""Voice adaptation: adapter kinds, both modes, bundles, and the guarantees the issue lists."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import adavoice
from adavoice.adaptation.bundle import CONFIG_NAME, WEIGHTS_NAME, read_bundle
from adavoice.adaptation.config import AdapterConfig
from adavoice.api import BaseModel, Voice
from adavoice.config import MelConfig
from adavoice.errors import AdapterMismatchError, ConfigError, MissingFileError, ModelFormatError
from adavoice.models.base_model import content_hash, load_base_model
from adavoice.models.speech_encoder import SpeechEncoder, SpeechEncoderConfig
from adavoice.text import TextProcessor
from tests.conftest import save_tiny_base, write_clips, write_tone

SENTENCES = ["the cat sat on the mat", "a dog ran home", "we like green tea",
             "it is a fine day", "she reads a book", "they walk to school",
             "he plays the drum", "birds sing at dawn"]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """The tiny base (graphemes, speakers "a" and "b") with a speaker-free mel encoder, and 8
    clips twice: with a metadata.csv ("clips") and without ("raw")."""
    root = tmp_path_factory.mktemp("adapt")
    base_dir = save_tiny_base(root / "base", speakers=["a", "b"], tokenizer="graphemes")
    acoustic = load_base_model(base_dir)[1].acoustic
    encoder = SpeechEncoder(SpeechEncoderConfig.for_base(acoustic, speaker_free=True))
    encoder.save(base_dir / "mel_encoder")
    clips = {"name": "clip{:02d}", "seconds": 0.8, "freq_hz": 140, "overtone": 0.1}
    transcribed = write_clips(root / "clips", SENTENCES, transcripts="metadata", **clips)
    untranscribed = write_clips(root / "clips-untranscribed", len(SENTENCES), **clips)
    return {"base": base_dir, "clips": transcribed, "raw": untranscribed}


def _config(kind, **kw):
    return AdapterConfig.for_kind(kind, steps=kw.pop("steps", 6), batch_size=3,
                                  validation_clips=2, validate_every=3, **kw)


def _state_bytes(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind,untranscribed", [("cln", False), ("cln", True),
                                                ("embedding", False), ("lora", True),
                                                ("decoder", False)])
def test_base_is_unchanged_and_bundle_round_trips(tiny_base, tmp_path, kind, untranscribed):
    base = BaseModel.load(tiny_base["base"])
    before, digest = _state_bytes(base.model), content_hash(tiny_base["base"])
    voice = adavoice.adapt(base, tiny_base["clips"], config=_config(kind),
                           untranscribed=untranscribed, progress=False)
    after = base.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert content_hash(tiny_base["base"]) == digest
    assert voice.config["provenance"]["transcribed"] is (not untranscribed)
    folder = voice.save(tmp_path / "voice")
    loaded = Voice.load(folder, base=base)
    text = "the cat ran"
    assert torch.allclose(voice.mel(text), loaded.mel(text), atol=1e-5)
    tensors, config = read_bundle(folder)
    assert config["stored_parameters"] == sum(t.numel() for t in tensors.values())


ALLOWED_PREFIXES = {"cln": ("speaker_vector", "utterance_vector", "norms."),
                    "embedding": ("speaker_vector", "utterance_vector"),
                    "lora": ("speaker_vector", "utterance_vector", "norms.", "lora."),
                    "decoder": ("speaker_vector", "utterance_vector", "norms.", "voice_decoder.")}


@pytest.mark.parametrize("kind", sorted(ALLOWED_PREFIXES))
def test_adapter_file_holds_only_adapter_keys(tiny_base, kind):
    voice = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=_config(kind, steps=2),
                           progress=False)
    assert voice.tensors
    assert all(key.startswith(ALLOWED_PREFIXES[kind]) for key in voice.tensors)
    base_keys = set(voice.base.model.state_dict())
    assert not base_keys & set(voice.tensors)
    if kind == "lora":
        assert any("lora_A" in key for key in voice.tensors)
        assert not any("base_layer" in key for key in voice.tensors)


def test_cln_stores_a_few_thousand_numbers(tiny_base):
    voice = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=_config("cln", steps=1),
                           progress=False)
    cfg = voice.base.model.cfg
    norms = len(voice.base.model.conditional_norms())
    assert voice.stored_parameters == cfg.speaker_dim + cfg.hidden + 2 * norms * cfg.hidden


def test_untranscribed_path_never_reads_text(tiny_base, monkeypatch):
    def no_text(*args, **kwargs):
        raise AssertionError("text was read in untranscribed adaptation")

    monkeypatch.setattr(TextProcessor, "process", no_text)
    monkeypatch.setattr(TextProcessor, "process_many", no_text)
    # a folder with no transcripts at all: AdaSpeech 2 is chosen without a flag
    voice = adavoice.adapt(tiny_base["base"], tiny_base["raw"], config=_config("cln"),
                           progress=False)
    assert voice.config["provenance"]["transcribed"] is False
    # and --untranscribed ignores transcripts that exist, even a damaged transcript file
    voice = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=_config("cln"),
                           untranscribed=True, progress=False)
    assert voice.config["provenance"]["transcribed"] is False
    (tiny_base["raw"] / "metadata.csv").write_bytes(b"\xff\xfe not text | at all")
    try:
        voice = adavoice.adapt(tiny_base["base"], tiny_base["raw"], config=_config("cln"),
                               untranscribed=True, progress=False)
    finally:
        (tiny_base["raw"] / "metadata.csv").unlink()
    assert voice.config["provenance"]["transcribed"] is False


@pytest.mark.parametrize("untranscribed", [False, True])
def test_adaptation_lowers_the_training_loss(tiny_base, untranscribed):
    cfg = AdapterConfig.for_kind("cln", steps=40, batch_size=6, validation_clips=0,
                                 learning_rate=3e-2, untranscribed_lr_scale=1.0)
    voice = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=cfg,
                           untranscribed=untranscribed, progress=False)
    metrics = voice.config["metrics"]
    assert metrics["train_mel_loss"] < 0.7 * metrics["initial_train_mel_loss"]


def test_two_voices_share_the_base_and_sound_different(tiny_base, tmp_path):
    first = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=_config("cln", steps=8),
                           progress=False).save(tmp_path / "one")
    cfg = _config("cln", steps=8, init="nearest", learning_rate=3e-2)
    second = adavoice.adapt(tiny_base["base"], tiny_base["raw"], config=cfg,
                            progress=False).save(tmp_path / "two")
    one, two = Voice.load(first), Voice.load(second)
    assert one.base is two.base
    text = "we like tea"
    assert not torch.allclose(one.mel(text), two.mel(text), atol=1e-3)


def test_hash_mismatch_and_damaged_bundles_fail_clearly(tiny_base, tmp_path):
    voice = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=_config("cln", steps=1),
                           progress=False)
    folder = voice.save(tmp_path / "voice")
    config = json.loads((folder / CONFIG_NAME).read_text())
    config["base"]["content_hash"] = "0" * 64
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(AdapterMismatchError, match="adapted from base"):
        Voice.load(folder)
    folder = voice.save(tmp_path / "damaged")
    (folder / WEIGHTS_NAME).write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFormatError):
        Voice.load(folder)
    (folder / WEIGHTS_NAME).unlink()
    with pytest.raises(MissingFileError):
        Voice.load(folder)
    with pytest.raises(MissingFileError):
        Voice.load(tmp_path / "nowhere")


def test_untranscribed_needs_a_mel_encoder(tiny_base, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_base["base"], bare, ignore=shutil.ignore_patterns("mel_encoder"))
    with pytest.raises(MissingFileError, match="mel encoder"):
        adavoice.adapt(bare, tiny_base["raw"], config=_config("cln"), progress=False)


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError):
        AdapterConfig.for_kind("prefix-tuning")


def test_adapt_and_synth_cli(tiny_base, tmp_path, capsys):
    from adavoice.cli.main import main

    out = tmp_path / "voices" / "tone"
    main(["adapt", str(tiny_base["clips"]), "--model", str(tiny_base["base"]), "--out", str(out),
          "--steps", "3", "--max-utterances", "6"])
    assert "cln voice, transcribed, 6 clips" in capsys.readouterr().out
    lines = tmp_path / "lines.txt"
    lines.write_text("one cat\ntwo dogs\n", encoding="utf-8")
    main(["synth", "--voice", str(out), "--text-file", str(lines), "--out-dir",
          str(tmp_path / "wavs")])
    assert sorted(p.name for p in (tmp_path / "wavs").iterdir()) == ["00.wav", "01.wav"]
    config = json.loads((out / CONFIG_NAME).read_text())
    config["base"]["content_hash"] = "f" * 64
    (out / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        main(["synth", "hello", "--voice", str(out), "--out", str(tmp_path / "x.wav")])
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "adapted from base" in err and "\n" not in err


def test_mel_encoder_of_another_base_is_refused(tiny_base, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_base["base"], other)
    encoder = SpeechEncoder.from_dir(other / "mel_encoder")
    encoder.save(other / "mel_encoder", {"base_weights_sha256": "0" * 64})
    with pytest.raises(AdapterMismatchError, match="another base"):
        adavoice.adapt(other, tiny_base["raw"], config=_config("cln"), progress=False)


def test_adapt_cli_lora_options(tiny_base, tmp_path, capsys):
    from adavoice.cli.main import main

    out = tmp_path / "small-lora"
    main(["adapt", str(tiny_base["clips"]), "--model", str(tiny_base["base"]), "--out", str(out),
          "--steps", "2", "--kind", "lora", "--lora-rank", "1", "--lora-alpha", "2",
          "--lora-target", "conv2"])
    tensors, config = read_bundle(out)
    lora = [k for k in tensors if k.startswith("lora.")]
    assert lora and all(".conv2." in k for k in lora)
    assert all(min(tensors[k].shape[:2]) == 1 for k in lora)  # rank 1
    assert (config["adapter"]["lora_rank"], config["adapter"]["lora_alpha"]) == (1, 2)
    assert Voice.load(out).mel("a cat").shape[0] == MelConfig().n_mels
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # a LoRA option given to another kind is refused
        main(["adapt", str(tiny_base["clips"]), "--model", str(tiny_base["base"]), "--out",
              str(tmp_path / "cln"), "--steps", "2", "--lora-rank", "2"])
    assert stop.value.code != 0 and "LoRA options" in capsys.readouterr().err
    assert not (tmp_path / "cln").exists()


def test_a_bundle_naming_layers_lora_cannot_wrap_is_a_model_format_error(tiny_base, tmp_path):
    voice = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=_config("lora", steps=1),
                           progress=False).save(tmp_path / "voice")
    config = json.loads((voice / CONFIG_NAME).read_text())
    config["adapter"]["lora_targets"] = ["attention"]
    (voice / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="lora_targets"):
        Voice.load(voice)


def test_every_lora_matrix_is_trained(tiny_base):
    # a LoRA target that the forward pass bypasses would keep B == 0 and be stored for nothing
    cfg = AdapterConfig.for_kind("lora", steps=4, batch_size=6, validation_clips=0,
                                 learning_rate=1e-2)
    voice = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=cfg, progress=False)
    b_matrices = {k: v for k, v in voice.tensors.items() if "lora_B" in k}
    assert b_matrices and all(float(v.abs().max()) > 0 for v in b_matrices.values())


def test_bundle_errors_name_the_folder(tiny_base, tmp_path):
    voice = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=_config("lora", steps=1),
                           progress=False)
    folder = voice.save(tmp_path / "voice")
    config = json.loads((folder / CONFIG_NAME).read_text())
    # a bundle of a newer adavoice: an adapter field this one does not know
    config["adapter"]["prefix_length"] = 8
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="adapter"):
        Voice.load(folder)
    # LoRA matrices missing from the file: refused, not silently a plain-CLN voice
    del config["adapter"]["prefix_length"]
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    from adavoice.adaptation.bundle import write_bundle

    kept = {k: v for k, v in voice.tensors.items() if not k.startswith("lora.")}
    write_bundle(folder, kept, {k: v for k, v in config.items()
                                if k not in ("format_version", "kind", "weights_sha256")})
    config = json.loads((folder / CONFIG_NAME).read_text())
    with pytest.raises(ModelFormatError, match="LoRA"):
        Voice.load(folder)
    # the base it names is gone: the error says how to point at one
    config["base"]["name"] = str(tmp_path / "moved-away")
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(MissingFileError, match="names is not here"):
        Voice.load(folder)


@pytest.mark.parametrize("field,value", [("validate_every", 0), ("patience", 0),
                                         ("validation_clips", -1), ("lora_alpha", 0)])
def test_bad_adapter_settings_are_config_errors(field, value):
    with pytest.raises(ConfigError):
        AdapterConfig.for_kind("cln", **{field: value})


@pytest.mark.parametrize("kind", ["cln", "embedding"])
def test_untranscribed_keeps_the_text_side_speaker_vector(tiny_base, kind):
    # without text nothing constrains the duration/pitch predictors, so their input stays put
    from adavoice.adaptation.clips import load_clips
    from adavoice.adaptation.loop import initial_vectors

    base = BaseModel.load(tiny_base["base"])
    cfg = _config(kind, steps=6, learning_rate=5e-2)
    start, _, _ = initial_vectors(base, load_clips(tiny_base["raw"], MelConfig()), cfg)
    voice = adavoice.adapt(base, tiny_base["raw"], config=cfg, progress=False)
    assert torch.equal(voice.tensors["speaker_vector"], start)
    assert "norms.0.scale" in voice.tensors  # the CLN side did adapt, and is stored


@pytest.mark.parametrize("field,value", [("validation", "free"), ("cln_parameters", "raw"),
                                         ("predicted_condition_share", 1.5),
                                         ("lora_targets", ("attention",)), ("lora_targets", ()),
                                         ("lora_targets", ("conv2", "conv2"))])
def test_unknown_adaptation_options_are_config_errors(field, value):
    with pytest.raises(ConfigError):
        AdapterConfig.for_kind("cln", **{field: value})


@pytest.mark.parametrize("untranscribed", [False, True])
def test_direct_cln_starts_where_the_projections_are_and_trains_only_the_stored_vectors(
        tiny_base, untranscribed):
    from adavoice.adaptation.kinds import adapter_for

    base = BaseModel.load(tiny_base["base"]).model
    vector, utterance = base.speaker_embedding.weight[1], base.speaker_utterance_vectors[1]
    direct = adapter_for(base, _config("cln", cln_parameters="direct"), vector, utterance,
                         tie_text_vector=not untranscribed)
    projected = adapter_for(base, _config("cln"), vector, utterance,
                            tie_text_vector=not untranscribed)
    for (s1, b1), (s2, b2) in zip(direct.norm_params(), projected.norm_params(), strict=True):
        assert torch.equal(s1.detach(), s2.detach()) and torch.equal(b1.detach(), b2.detach())
    trained = {n for n, p in direct.named_parameters() if p.requires_grad}
    n_norms = len(base.conditional_norms())
    assert len(trained) == 2 * n_norms + (0 if untranscribed else 1)
    assert sorted(direct.export()) == sorted(projected.export())


def test_synthesis_validation_decodes_what_synthesis_decodes(tiny_base):
    # the held-out pass with predicted variance equals inference on the same durations
    base = BaseModel.load(tiny_base["base"], precision="float32")
    model = base.model
    ids = torch.tensor([base.processor.process("a dog ran home").ids])
    voice = model.speaker_condition(0)
    synthesised = model.infer(ids, voice)
    frames = int(synthesised.durations.sum())
    mask = torch.ones(1, ids.shape[1], dtype=torch.bool)
    frame_mask = torch.ones(1, frames, dtype=torch.bool)
    with torch.no_grad():
        out = model(ids, mask, torch.tensor([0]), torch.randn(1, 80, frames), frame_mask,
                    torch.full((1, frames), 5.0), torch.zeros(1, frames), voice=voice,
                    durations=synthesised.durations, predicted_variance=True)
    assert torch.allclose(out.mel, synthesised.mel, atol=1e-5)


def test_untranscribed_runs_stop_at_their_own_cap_unless_steps_is_given(tiny_base):
    cfg = AdapterConfig.for_kind("cln", steps=None, untranscribed_steps=4, batch_size=3,
                                 validation_clips=0)
    voice = adavoice.adapt(tiny_base["base"], tiny_base["raw"], config=cfg, progress=False)
    assert voice.config["provenance"]["steps"] == 4
    assert voice.config["adapter"]["untranscribed_steps"] == 4
    transcribed = adavoice.adapt(tiny_base["base"], tiny_base["clips"], config=dataclasses.replace(
        cfg, steps=5), progress=False)
    assert transcribed.config["provenance"]["steps"] == 5
    with pytest.raises(ConfigError):
        AdapterConfig.for_kind("cln", untranscribed_steps=0)


def test_adapt_cli_refuses_to_replace_a_voice_unless_asked(tiny_base, tmp_path):
    from adavoice.cli.main import main

    out = tmp_path / "voice"
    args = ["adapt", str(tiny_base["clips"]), "--model", str(tiny_base["base"]), "--out",
            str(out), "--steps", "2", "--kind", "embedding"]
    main(args)
    before = (out / WEIGHTS_NAME).read_bytes()
    with pytest.raises(SystemExit) as stop:
        main(args[:-2] + ["--kind", "cln"])
    assert stop.value.code != 0
    assert (out / WEIGHTS_NAME).read_bytes() == before  # the first voice is untouched
    main(args[:-2] + ["--kind", "cln", "--overwrite"])
    assert json.loads((out / CONFIG_NAME).read_text())["adapter"]["kind"] == "cln"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice"]  # no stage or old folder


def test_a_too_short_clip_and_half_transcribed_data_are_refused(tiny_base, tmp_path):
    import shutil

    from adavoice.errors import EmptyAudioError, EmptyTranscriptError

    data = tmp_path / "clips"
    shutil.copytree(tiny_base["clips"], data)
    lines = (data / "metadata.csv").read_text().splitlines()
    (data / "metadata.csv").write_text("\n".join(lines[:-2]) + "\n")  # two clips lose text
    with pytest.raises(EmptyTranscriptError, match="2 of 8 clips have no transcript"):
        adavoice.adapt(tiny_base["base"], data, config=_config("cln"), progress=False)
    voice = adavoice.adapt(tiny_base["base"], data, config=_config("cln", steps=2),
                           untranscribed=True, progress=False)
    assert voice.config["provenance"]["transcribed"] is False
    write_tone(data / "clip99.wav", 0.05, freq_hz=150, overtone=0.1)
    with pytest.raises(EmptyAudioError, match="too short"):
        adavoice.adapt(tiny_base["base"], data, config=_config("cln"), untranscribed=True,
                       progress=False)


# ---- bad adaptation data: typed errors that name what is wrong (ninth session) ----------------

def test_load_clips_refuses_several_speakers_silence_and_bad_counts(tmp_path):
    from adavoice.adaptation.clips import load_clips
    from adavoice.config import MelConfig
    from adavoice.errors import ConfigError, DatasetError, EmptyAudioError

    mixed = write_clips(tmp_path / "mixed", ["Hello."] * 4, transcripts="manifest",
                        speaker_of=lambda i: f"s{i % 2}")
    with pytest.raises(DatasetError, match="2 speakers"):
        load_clips(mixed, MelConfig())
    assert len(load_clips(mixed, MelConfig(), speaker="s1")) == 2
    silent = write_clips(tmp_path / "silent", ["Hello."] * 3, transcripts="manifest", silent=(1,))
    with pytest.raises(EmptyAudioError, match="silent") as caught:
        load_clips(silent, MelConfig())
    assert "c01.wav" in str(caught.value)
    for bad in (0, -1, "3", True):
        with pytest.raises(ConfigError, match="max_utterances"):
            load_clips(mixed, MelConfig(), max_utterances=bad, speaker="s1")


def test_a_transcript_with_nothing_to_say_names_its_clip(tmp_path):
    from adavoice.api import adapt
    from adavoice.errors import EmptyTextError

    data = write_clips(tmp_path / "voice", ["Hello there.", "...!?", "Good day."],
                       transcripts="manifest")
    with pytest.raises(EmptyTextError, match="clip c01"):
        adapt("demo", data, steps=1, progress=False)


@pytest.mark.parametrize("line, message", [
    ("null", "line 2: manifest row is not an object"),
    ('{"id": "b", "audio": "b.wav", "speaker": "s", "language": "en", "duration_s": "long"}',
     "line 2: .*duration_s is not a number"),
    ('{"id": "b", "audio": "b.wav", "speaker": "s", "language": "en", "duration_s": 1,'
     ' "text": 5}', "line 2: .*text is not a string"),
])
def test_manifest_rows_of_the_wrong_shape_name_their_line(tmp_path, line, message):
    from adavoice.data.manifest import Manifest
    from adavoice.errors import DatasetError

    good = '{"id": "a", "audio": "a.wav", "speaker": "s", "language": "en", "duration_s": 1}'
    (tmp_path / "manifest.jsonl").write_text(good + "\n" + line + "\n")
    with pytest.raises(DatasetError, match=message):
        Manifest.load(tmp_path)


def test_manifest_tolerates_a_bom_and_refuses_latin1(tmp_path):
    from adavoice.data.manifest import Manifest
    from adavoice.errors import DatasetError

    good = '{"id": "a", "audio": "a.wav", "speaker": "s", "language": "en", "duration_s": 1}'
    (tmp_path / "manifest.jsonl").write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\n")
    assert len(Manifest.load(tmp_path)) == 1
    (tmp_path / "manifest.jsonl").write_bytes(good.replace("s", "\xe9").encode("latin-1"))
    with pytest.raises(DatasetError, match="UTF-8"):
        Manifest.load(tmp_path)


@pytest.mark.parametrize("part, damage, call", [
    ("mel_encoder/config.json", lambda p: p.write_text('{"format_version": 1}'),
     lambda b: b.speech_encoder()),
    ("mel_encoder/config.json", lambda p: p.write_text("[1, 2]"), lambda b: b.speech_encoder()),
    ("speaker_encoder/centroids.safetensors", lambda p: p.write_bytes(b"\x00" * 64),
     lambda b: b.speaker_centroids()),
    ("speaker_encoder/config.json", lambda p: p.write_text('{"x": 1}'),
     lambda b: b.speaker_encoder()),
])
def test_a_damaged_part_of_the_base_is_a_model_format_error(tmp_path, part, damage, call):
    import shutil

    from adavoice.models.base_model import SHIPPED_MODELS

    folder = shutil.copytree(SHIPPED_MODELS / "demo", tmp_path / "demo")
    damage(folder / part)
    with pytest.raises(ModelFormatError) as caught:
        call(BaseModel.load(folder))
    assert (folder / part).parent.name in str(caught.value)
