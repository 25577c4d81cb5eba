"""Hardening of the adaptation data and the artifacts the API reads and writes: typed one-line
errors for clips too long to batch, transcripts too long for their audio, an empty
metadata.csv, damaged or absurd artifact files, unwritable voice folders and base weights that
make synthesis non-finite.

The model is a randomly initialised tiny base (built in a second, not trained): these tests
check data handling and files, not the sound.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
import torch

from adavoice.adaptation.clips import MAX_CHARS_PER_SECOND, MAX_CLIP_SECONDS, load_clips
from adavoice.api import BaseModel, Voice
from adavoice.config import MelConfig
from adavoice.data.readers import read_folder
from adavoice.errors import (
    ConfigError,
    DatasetError,
    MetadataFormatError,
    ModelFormatError,
    OutputError,
    TranscriptError,
)
from tests.conftest import one_line_error, run_cli, tiny_voice, write_tone

SR = 22050
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SENTENCE = "The birch canoe slid on the smooth planks."  # 42 characters
ROOT_SKIP = pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits, so a "
                               "chmod 0o555 folder is writable; the 'under a file' case covers "
                               "the same check")


def _unwritable(tmp_path: Path, where: str) -> Path:
    """A voice folder path that cannot be created: below a regular file, or in a 0o555 folder."""
    if where == "under a file":
        (tmp_path / "afile").write_text("not a folder")
        return tmp_path / "afile" / "voice"
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    return locked / "voice"


# ---- 1: a clip too long to batch is refused from its header, before it is decoded -------------

@pytest.mark.parametrize("layout", ["transcribed folder", "untranscribed", "stale manifest"])
def test_a_ten_minute_clip_is_refused_before_decoding(tmp_path, monkeypatch, layout):
    import adavoice.adaptation.clips as clips_module

    data = tmp_path / "voice"
    data.mkdir()
    write_tone(data / "a.wav", 2.0, freq_hz=150.0)
    write_tone(data / "b.wav", 600.0, 8000, freq_hz=150.0)  # ten minutes (9.6 MB at 8 kHz)
    if layout == "stale manifest":  # the row's duration_s is not trusted
        rows = [{"id": s, "audio": f"{s}.wav", "text": SENTENCE, "speaker": "new",
                 "language": "en", "duration_s": 2.0} for s in ("a", "b")]
        (data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        (data / "metadata.csv").write_text(f"a|{SENTENCE}\nb|{SENTENCE}\n")
    decoded = []
    real = clips_module.compute_features

    def guarded(path, *args, **kwargs):
        assert Path(path).name != "b.wav", "the over-long clip was decoded"
        decoded.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(clips_module, "compute_features", guarded)
    with pytest.raises(DatasetError, match=r"clip b is 600\.0 s long.*at most 30 s") as caught:
        load_clips(data, MelConfig(), untranscribed=layout == "untranscribed")
    assert caught.value.path.endswith("b.wav")
    assert caught.value.fix == "cut it into sentences of at most 30 s"
    assert decoded == ["a.wav"]


def test_a_clip_just_under_the_cap_is_adapted_from(tmp_path):
    write_tone(tmp_path / "a.wav", MAX_CLIP_SECONDS - 0.5, freq_hz=150.0)
    clips = load_clips(tmp_path, MelConfig())
    assert len(clips) == 1 and clips[0].duration_s == pytest.approx(MAX_CLIP_SECONDS - 0.5)


def test_adapt_cli_refuses_a_long_clip_in_one_line(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "voice"
    data.mkdir()
    write_tone(data / "a.wav", 2.0, freq_hz=150.0)
    write_tone(data / "long.wav", 600.0, 8000, freq_hz=150.0)
    started = time.perf_counter()
    code, err = run_cli(["adapt", data, "--out", tmp_path / "out", "--model", tiny_model_dir],
                        capsys)
    message = one_line_error(err)
    assert code == 1 and "long.wav" in message and "600.0 s" in message
    assert "cut it into sentences" in message
    assert time.perf_counter() - started < 30  # refused from the header, not after training
    assert not (tmp_path / "out").exists()


# ---- 2: a transcript far too long for its audio ------------------------------------------------

def _truncate(path: Path, keep: float) -> None:
    """Cut a PCM WAV's bytes to ``keep`` of its samples, header untouched (as a failed copy)."""
    raw = path.read_bytes()
    header = 44
    path.write_bytes(raw[:header + int(keep * (len(raw) - header)) // 2 * 2])


@pytest.mark.parametrize("text, keep, numbers", [
    ("a" * 5000, 1.0, ["5000 characters", "3.00 s", "1667 characters/s"]),
    (SENTENCE, 0.3, ["42 characters", "0.90 s", "47 characters/s"]),  # WAV cut to 30 %
])
def test_a_transcript_too_long_for_its_audio_is_refused(tmp_path, text, keep, numbers):
    write_tone(tmp_path / "c00.wav", 2.0, freq_hz=150.0)
    write_tone(tmp_path / "c01.wav", 3.0, freq_hz=150.0)
    _truncate(tmp_path / "c01.wav", keep)
    (tmp_path / "metadata.csv").write_text(f"c00|{SENTENCE}\nc01|{text}\n")
    with pytest.raises(TranscriptError) as caught:
        load_clips(tmp_path, MelConfig())
    message = str(caught.value)
    assert "clip c01" in message and caught.value.path.endswith("c01.wav")
    assert all(number in message for number in numbers), message
    assert "truncated" in message and "another clip" in message
    assert len(load_clips(tmp_path, MelConfig(), untranscribed=True)) == 2  # no text read


def test_a_transcript_at_a_normal_pace_is_kept(tmp_path):
    write_tone(tmp_path / "c00.wav", 3.0, freq_hz=150.0)  # 42 characters in 3 s: 14 a second
    (tmp_path / "metadata.csv").write_text(f"c00|{SENTENCE}\n")
    assert load_clips(tmp_path, MelConfig())[0].text == SENTENCE


@pytest.mark.parametrize("folder", ["demo-voice", "demo-voice-test"])
def test_the_shipped_clips_pass_the_transcript_check(folder):
    clips = load_clips(EXAMPLES / folder, MelConfig(), max_utterances=100)
    rate = max(len(c.text.strip()) / c.duration_s for c in clips)
    assert rate < 0.6 * MAX_CHARS_PER_SECOND  # 18.7 and 18.2 characters/s: well clear


# ---- 3: an empty metadata.csv is not "no transcripts" ------------------------------------------

@pytest.mark.parametrize("name", ["metadata.csv", "transcripts.csv"])
@pytest.mark.parametrize("content", [b"", b"\n", b"  \n\t\r\n", b"\xef\xbb\xbf"],
                         ids=["0 bytes", "newline", "whitespace", "BOM only"])
def test_an_empty_metadata_file_is_a_metadata_format_error(tmp_path, name, content):
    write_tone(tmp_path / "a.wav", 1.0, freq_hz=150.0)
    write_tone(tmp_path / "b.wav", 1.0, freq_hz=150.0)
    (tmp_path / name).write_bytes(content)
    for read in (lambda: read_folder(tmp_path), lambda: load_clips(tmp_path, MelConfig())):
        with pytest.raises(MetadataFormatError, match=f"{name} is empty") as caught:
            read()
        assert caught.value.path.endswith(name)
        assert "remove it to adapt without transcripts, or fill it" in caught.value.fix
    assert len(load_clips(tmp_path, MelConfig(), untranscribed=True)) == 2  # never opened


def test_adapt_cli_names_an_empty_metadata_file(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "voice"
    data.mkdir()
    write_tone(data / "a.wav", 1.0, freq_hz=150.0)
    (data / "metadata.csv").write_bytes(b"")
    code, err = run_cli(["adapt", data, "--out", tmp_path / "out", "--model", tiny_model_dir],
                        capsys)
    message = one_line_error(err)
    assert code == 1 and "metadata.csv is empty" in message and "remove it" in message


# ---- 4a: a flipped byte in any weights file is caught by the checksum ---------------------------

def _flip(path: Path, where: str) -> None:
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    offset = {"header": header - 2, "tensor data": (header + len(data)) // 2,
              "last byte": len(data) - 1}[where]
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["header", "tensor data", "last byte"])
@pytest.mark.parametrize("artifact", ["voice", "base"])
def test_a_flipped_byte_in_the_weights_is_a_model_format_error(tiny_model_dir, tmp_path,
                                                               artifact, where):
    if artifact == "voice":
        folder = tiny_voice(tiny_model_dir)[3].save(tmp_path / "voice")
        weights = folder / "adapter.safetensors"

        def load():
            return Voice.load(folder, base=tiny_model_dir)
    else:
        folder = shutil.copytree(tiny_model_dir, tmp_path / "base")
        weights = folder / "model.safetensors"

        def load():
            return BaseModel.load(folder)
    load()  # intact, it loads
    _flip(weights, where)
    with pytest.raises(ModelFormatError, match="damaged") as caught:
        load()
    assert caught.value.path.endswith(weights.name)


# ---- 4b: absurdly nested JSON is a typed error, not a RecursionError ----------------------------

@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 100_000 + "]" * 100_000,
                                  '{"a": ' * 100_000], ids=["open", "balanced", "objects"])
@pytest.mark.parametrize("artifact", ["voice", "base"])
def test_absurdly_nested_config_is_a_typed_error(tiny_model_dir, tmp_path, artifact, text):
    if artifact == "voice":
        folder = tiny_voice(tiny_model_dir)[3].save(tmp_path / "voice")
        config = folder / "adapter_config.json"

        def load():
            return Voice.load(folder, base=tiny_model_dir)
    else:
        folder = shutil.copytree(tiny_model_dir, tmp_path / "base")
        config = folder / "config.json"

        def load():
            return BaseModel.load(folder)
    config.write_text(text)
    with pytest.raises((ModelFormatError, ConfigError)) as caught:
        load()
    assert config.name in str(caught.value) and len(str(caught.value).splitlines()) == 1


# ---- 4c: an unwritable voice folder is an OutputError, and adapt says so before training -------

@pytest.mark.parametrize("where", ["under a file", pytest.param("read-only", marks=ROOT_SKIP)])
def test_voice_save_where_nothing_can_be_written_is_an_output_error(tiny_model_dir, tmp_path,
                                                                   where):
    voice = tiny_voice(tiny_model_dir)[3]
    target = _unwritable(tmp_path, where)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(OutputError):
        voice.save(target)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no stage left behind


@pytest.mark.parametrize("where", ["under a file", pytest.param("read-only", marks=ROOT_SKIP)])
def test_adapt_cli_refuses_an_unwritable_out_before_training(tmp_path, capsys, monkeypatch,
                                                              where):
    import adavoice.api

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded or trained before --out was checked")

    monkeypatch.setattr(BaseModel, "load", refuse)
    monkeypatch.setattr(adavoice.api, "adapt", refuse)
    data = tmp_path / "voice-data"
    data.mkdir()
    write_tone(data / "a.wav", 1.0, freq_hz=150.0)
    started = time.perf_counter()
    code, err = run_cli(["adapt", data, "--out", _unwritable(tmp_path, where)], capsys)
    message = one_line_error(err)
    assert code == 1 and ("cannot write here" in message or "inside a file" in message), message
    assert time.perf_counter() - started < 10


# ---- 4d: base weights that make synthesis non-finite blame the model ---------------------------

@pytest.mark.parametrize("tensor", [
    "token_embedding.weight", "decoder.blocks.0.conv2.weight", "mel_out.weight", "mel_out.bias",
    "duration_predictor.out.weight",
])
def test_non_finite_synthesis_is_a_model_format_error(tiny_model_dir, tmp_path, capsys, tensor):
    from adavoice.models.acoustic import AcousticModel
    from adavoice.models.base_model import load_base_model, save_base_model

    model, cfg = load_base_model(tiny_model_dir)
    state = model.state_dict()
    state[tensor] = torch.full_like(state[tensor], 1e30)
    damaged = AcousticModel(cfg.acoustic)
    damaged.load_state_dict(state)
    folder = save_base_model(tmp_path / "base", damaged, cfg)
    with pytest.raises(ModelFormatError, match="non-finite") as caught:
        BaseModel.load(folder).synthesize("Hello there.")
    assert caught.value.path == str(folder)
    out = tmp_path / "speech.wav"
    code, err = run_cli(["synth", "Hello there.", "--model", folder, "--out", out], capsys)
    message = one_line_error(err)
    assert code == 1 and str(folder) in message and "speech.wav" not in message
    assert not out.exists()


# ---- 4e: both files of a voice get the usual permissions ---------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)], ids=["022", "027"])
def test_voice_files_share_the_usual_permissions(tiny_model_dir, tmp_path, umask, mode):
    voice = tiny_voice(tiny_model_dir)[3]
    previous = os.umask(umask)
    try:
        folder = voice.save(tmp_path / "voice")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == {"adapter.safetensors": mode, "adapter_config.json": mode}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask
