"""Bad input to the CLI and the API: typed one-line errors, no clobbered or half-written files.

The model is a randomly initialised tiny base (built in a second, not trained): these tests
check argument handling and files, not the sound.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import typer

from adavoice.api import BaseModel, SynthesisConfig
from adavoice.audio import save_audio
from adavoice.cli.main import main
from adavoice.errors import ConfigError, EmptyTextError
from tests.conftest import one_line_error, run_cli, tiny_voice, tone, write_tone

SR = 22050


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the command loads a model: the check must come before that."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(BaseModel, "load", refuse)


# ---- 1: vocode never writes into its input folder ------------------------------------------
def test_vocode_refuses_its_input_folder_as_output(tmp_path, capsys, no_model_load):
    source = tmp_path / "clips"
    source.mkdir()
    write_tone(source / "a.wav", 0.3)
    before = (source / "a.wav").read_bytes()
    for out in (source, tmp_path / "clips" / ".." / "clips"):
        code, err = run_cli(["vocode", source, out, "--model", "demo"], capsys)
        assert code == 1 and "input folder" in one_line_error(err)
    assert (source / "a.wav").read_bytes() == before
    assert sorted(p.name for p in source.iterdir()) == ["a.wav"]


# ---- 2: Ctrl-C exits 130 with a note ----------------------------------------------------------
@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, typer.Abort])
def test_ctrl_c_exits_130_and_says_so(interrupt, tmp_path, capsys, monkeypatch):
    def stop(*args, **kwargs):
        raise interrupt()

    monkeypatch.setattr(BaseModel, "load", stop)
    code, err = run_cli(["synth", "Hi.", "--out", tmp_path / "a.wav"], capsys)
    assert code == 130 and err.strip() == "interrupted"


# ---- 3: usage errors print usage, not a traceback ---------------------------------------------
@pytest.mark.parametrize("args", [
    ["synth"],                                          # neither TEXT nor --text-file
    ["synth", "--bogus"],                               # unknown option
    ["synth", "Hi.", "--out", "a.wav", "--length-scale", "abc"],  # not a number
    ["eval", "--ref", "refs"],                          # a required option missing
    ["vocode", "in"],                                   # a required argument missing
])
def test_usage_errors_show_usage_without_traceback(args, capsys, no_model_load):
    code, err = run_cli(args, capsys)
    assert code == 2
    assert "Usage:" in err and "Error" in err and "Traceback" not in err


# ---- 4: a bad input fails the batch before any output is written -------------------------------
def test_vocode_reads_every_input_before_writing(tiny_model_dir, tmp_path, capsys):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    write_tone(source / "a.wav", 0.3)
    (source / "b.wav").write_text("not audio", encoding="utf-8")
    (out / "a.wav").write_bytes(b"earlier output")
    code, err = run_cli(["vocode", source, out, "--model", tiny_model_dir], capsys)
    assert code == 1 and "b.wav" in one_line_error(err)
    assert (out / "a.wav").read_bytes() == b"earlier output"
    assert sorted(p.name for p in out.iterdir()) == ["a.wav"]


def test_synth_text_file_checks_every_line_first(tiny_model_dir, tmp_path, capsys):
    lines, out = tmp_path / "lines.txt", tmp_path / "out"
    lines.write_text("Hello there.\n\n你好世界\nBye.\n", encoding="utf-8")
    out.mkdir()
    (out / "00.wav").write_bytes(b"earlier output")
    code, err = run_cli(["synth", "--model", tiny_model_dir, "--text-file", lines,
                         "--out-dir", out], capsys)
    assert code == 1 and "00.wav: the output exists" in one_line_error(err)  # --overwrite
    code, err = run_cli(["synth", "--model", tiny_model_dir, "--text-file", lines,
                         "--out-dir", out, "--overwrite"], capsys)
    message = one_line_error(err)
    assert code == 1 and "line 3" in message and str(lines) in message
    assert (out / "00.wav").read_bytes() == b"earlier output"
    assert sorted(p.name for p in out.iterdir()) == ["00.wav"]


# ---- 5: outputs are numbered by line position; blank lines get no file -------------------------
def test_text_file_outputs_follow_line_positions(tiny_model_dir, tmp_path, capsys):
    lines, out = tmp_path / "lines.txt", tmp_path / "out"
    lines.write_text("One line.\n\nThree.\n\n", encoding="utf-8")
    main(["synth", "--model", str(tiny_model_dir), "--text-file", str(lines),
          "--out-dir", str(out), "--vocoder", "griffin-lim"])
    assert sorted(p.name for p in out.iterdir()) == ["00.wav", "02.wav"]
    summary = capsys.readouterr().out
    assert "wrote 2 files" in summary and "blank line 2" in summary


# ---- 6: only the formats save_audio can write -------------------------------------------------
def test_only_wav_flac_and_ogg_are_written(tmp_path, capsys, no_model_load):
    for suffix in (".mp3", ".txt", ""):
        target = tmp_path / f"speech{suffix}"
        with pytest.raises(ConfigError, match=".wav, .flac or .ogg"):
            save_audio(target, tone(0.3), SR)
        code, err = run_cli(["synth", "Hello.", "--out", target], capsys)
        assert code == 1 and ".wav, .flac or .ogg" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []
    for suffix, fmt in ((".flac", "FLAC"), (".ogg", "OGG"), (".WAV", "WAV")):
        save_audio(tmp_path / f"a{suffix}", tone(0.3), SR)
        assert sf.info(str(tmp_path / f"a{suffix}")).format == fmt


# ---- 7: unwritable targets are typed errors and leave no .part ---------------------------------
def test_a_folder_or_unwritable_path_is_a_typed_error(tmp_path, capsys, no_model_load):
    folder = tmp_path / "existing"
    folder.mkdir()
    code, err = run_cli(["synth", "Hello.", "--out", folder], capsys)
    assert code == 1 and "folder" in one_line_error(err)
    with pytest.raises(ConfigError, match="folder"):
        save_audio(folder, tone(0.3), SR)
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot write audio") as err_info:
        save_audio(tmp_path / "a_file" / "x.wav", tone(0.3), SR)  # parent is a file
    assert err_info.value.path == str(tmp_path / "a_file" / "x.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "existing"]
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("failure", [RuntimeError("Error opening: System error"),
                                     OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_removes_the_part_file(failure, tmp_path, monkeypatch):
    target = tmp_path / "a.wav"
    target.write_bytes(b"the earlier file")

    def half_write(self, data):  # the header is written, then the samples fail
        raise failure

    monkeypatch.setattr(sf.SoundFile, "write", half_write)
    expected = KeyboardInterrupt if isinstance(failure, KeyboardInterrupt) else ConfigError
    with pytest.raises(expected):
        save_audio(target, tone(0.3), SR)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]
    assert target.read_bytes() == b"the earlier file"


# ---- 8: knobs out of range, and text in another alphabet ---------------------------------------
@pytest.mark.parametrize("knobs", [
    {"length_scale": 0.0}, {"length_scale": -1.0}, {"length_scale": 1000.0},
    {"length_scale": float("inf")}, {"pitch_shift": float("nan")}, {"pitch_shift": 1000.0},
    {"pitch_shift": -25.0}, {"energy_scale": -5.0}, {"energy_scale": 0.0},
])
def test_knobs_out_of_range_are_refused(knobs, tiny_model_dir):
    model = BaseModel.load(tiny_model_dir)
    with pytest.raises(ConfigError, match=next(iter(knobs))):
        model.mel("Hello.", model.model.speaker_condition(0), SynthesisConfig.make(**knobs))


def test_knobs_at_the_limits_are_accepted_and_the_cli_checks_early(tmp_path, capsys,
                                                                    no_model_load):
    SynthesisConfig(length_scale=10.0, pitch_shift=-24.0, energy_scale=0.01)
    SynthesisConfig(length_scale=0.1, pitch_shift=24.0, energy_scale=5.0)
    code, err = run_cli(["synth", "Hello.", "--out", tmp_path / "a.wav", "--pitch-shift",
                         "nan"], capsys)
    assert code == 1 and "pitch_shift" in one_line_error(err)


def test_text_outside_the_alphabet_names_the_language():
    from adavoice.text import TextProcessor

    processor = TextProcessor.from_language("en")
    with pytest.raises(EmptyTextError, match="English.*alphabet"):
        processor.process("你好世界")
    with pytest.raises(EmptyTextError, match="after normalisation"):
        processor.process("...")


# ---- the Python API: found by an audit of bad input (ninth session) ---------------------------

def test_voice_save_never_removes_a_folder_of_other_files(tiny_model_dir, tmp_path):
    _, _, _, voice = tiny_voice(tiny_model_dir)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "take1.flac").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="not a voice"):
        voice.save(recordings)
    assert (recordings / "take1.flac").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recordings"]  # no stage left
    empty = tmp_path / "empty"
    empty.mkdir()
    saved = voice.save(empty)
    assert (saved / "adapter.safetensors").is_file()
    voice.save(saved)  # an existing voice may be replaced


def test_adapter_tensors_with_nan_are_refused(tiny_model_dir):
    from adavoice.api import Voice
    from adavoice.errors import ModelFormatError

    base, tensors, config, _ = tiny_voice(tiny_model_dir)
    tensors["norms.0.scale"][3] = float("nan")
    with pytest.raises(ModelFormatError, match=r"NaN.*norms\.0\.scale"):
        Voice(base, tensors, config)


def test_audio_with_nan_is_refused_and_over_range_float_is_clipped(tmp_path):
    from adavoice.audio import load_audio
    from adavoice.errors import AudioReadError

    wave = np.zeros(SR // 2, dtype=np.float32)
    wave[100] = np.nan
    sf.write(tmp_path / "nan.wav", wave, SR, subtype="FLOAT")
    with pytest.raises(AudioReadError, match="NaN"):
        load_audio(tmp_path / "nan.wav")
    wave[100] = 30.0
    sf.write(tmp_path / "loud.wav", wave, SR, subtype="FLOAT")
    assert load_audio(tmp_path / "loud.wav").max() == 1.0


def test_save_audio_refuses_nan_and_writes_nothing(tmp_path):
    with pytest.raises(ConfigError, match="NaN"):
        save_audio(tmp_path / "out.wav", np.full(100, np.nan), SR)
    assert list(tmp_path.iterdir()) == []


def test_a_local_folder_named_demo_does_not_hide_the_shipped_model(tmp_path, monkeypatch):
    from adavoice.models.base_model import SHIPPED_MODELS, resolve_model_dir

    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    assert resolve_model_dir("demo") == SHIPPED_MODELS / "demo"
    model = tmp_path / "mine"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert resolve_model_dir("mine") == model.relative_to(tmp_path)


def test_long_text_is_spoken_piece_by_piece(tiny_model_dir):
    from adavoice.text.chunks import MAX_CHARS_PER_PASS, text_chunks

    base = BaseModel.load(tiny_model_dir, precision="float32")
    voice = base.model.speaker_condition(0)
    text = " ".join(f"Sentence number {i}, said clearly and slowly." for i in range(20))
    chunks = text_chunks(text)
    assert len(chunks) > 1 and all(len(c) <= MAX_CHARS_PER_PASS for c in chunks)
    assert " ".join(chunks) == text
    whole = base.mel(text, voice)  # the normalised text ("number seven, ...") is what is cut
    normalized = text_chunks(base.processor.normalizer(text).text)
    assert len(normalized) > 1
    assert torch.equal(whole, torch.cat([base.mel(c, voice) for c in normalized], dim=-1))
    assert text_chunks("a " * 10 + "x" * 50, max_chars=20)[-1] == "x" * 50  # a word stays whole


def test_text_is_also_capped_in_tokens(tiny_model_dir):
    from adavoice.errors import TextTooLongError
    from adavoice.text.chunks import MAX_TOKENS_PER_PASS

    base = BaseModel.load(tiny_model_dir)
    digits = "1234567890" * 25  # 250 characters, thousands of tokens once spoken as words
    assert len(base.processor.process(digits).ids) > MAX_TOKENS_PER_PASS
    pieces = base.token_pieces(digits)
    assert len(pieces) > 1 and all(p.shape[1] <= MAX_TOKENS_PER_PASS for p in pieces)
    assert base.token_pieces("Hello there.")[0].tolist() == [
        base.processor.process("Hello there.").ids]
    with pytest.raises(TextTooLongError, match="no space or punctuation"):
        base.token_pieces("a" * 5000)


def test_adapt_overwrite_never_replaces_a_folder_of_other_files(tmp_path, capsys,
                                                                 no_model_load):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, err = run_cli(["adapt", "examples/demo-voice", "--out", out, "--overwrite"], capsys)
    assert code == 1 and "not a voice" in one_line_error(err)
    assert (out / "notes.txt").read_text() == "mine"


def test_text_that_is_not_a_string_is_a_typed_error(tiny_model_dir):
    base = BaseModel.load(tiny_model_dir)
    with pytest.raises(EmptyTextError, match="string"):
        base.synthesize(5)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["acoustic"].update(hidden="128"), "hidden must be int"),
    (lambda c: c.update(mel=None), "not a valid base config"),
    (lambda c: c.update(speakers="ab"), "list of names"),
    (lambda c: c.update(speakers=["one", "two", "three"]), "3 speaker names for 2"),
    (lambda c: c.update(format_version=True), "format_version"),
])
def test_a_damaged_base_config_names_config_json(tiny_model_dir, tmp_path, edit, message):
    import json
    import shutil

    from adavoice.errors import ModelFormatError

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=message) as caught:
        BaseModel.load(folder)
    assert "config.json" in str(caught.value)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(base="demo"), "as objects"),
    (lambda c: c.pop("adapter"), "both be present"),
    (lambda c: c["base"].update(name=5), "must be strings"),
    (lambda c: c.update(defaults={"length_scale": "fast"}), "length_scale must be float"),
    (lambda c: c.update(defaults={"pitch_shift": 99}), "pitch_shift is 99 semitones"),
    (lambda c: c.update(defaults={"speed": 2}), "no field"),
    (lambda c: c.update(kind="cln"), "not a voice config"),
])
def test_a_damaged_voice_config_is_a_typed_error(tiny_model_dir, tmp_path, edit, message):
    import json

    from adavoice.api import Voice
    from adavoice.errors import ModelFormatError

    folder = tiny_voice(tiny_model_dir)[3].save(tmp_path / "voice")
    config = json.loads((folder / "adapter_config.json").read_text())
    edit(config)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=message):
        Voice.load(folder, base=tiny_model_dir)


def test_tensors_of_another_kind_are_refused(tiny_model_dir):
    from adavoice.api import Voice
    from adavoice.errors import ModelFormatError

    base, tensors, config, _ = tiny_voice(tiny_model_dir)
    tensors["voice_decoder.layers.0.conv1.weight"] = torch.zeros(2)
    with pytest.raises(ModelFormatError, match="another kind"):
        Voice(base, tensors, config)


def test_text_file_with_an_uncuttable_line_writes_nothing(tiny_model_dir, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello there.\n" + "a" * 5000 + "\n")
    out = tmp_path / "out"
    code, err = run_cli(["synth", "--model", tiny_model_dir, "--text-file", lines,
                         "--out-dir", out], capsys)
    assert code == 1 and "line 2" in one_line_error(err)
    assert not out.exists() or list(out.iterdir()) == []
