"""adavoice.data.readers: corpus-shaped trees built in tmp_path -> manifests, and every error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from adavoice.data.manifest import Manifest
from adavoice.data.readers import (
    import_corpus,
    read_commonvoice,
    read_folder,
    read_libritts,
    read_ljspeech,
    read_vctk,
)
from adavoice.errors import (
    AudioReadError,
    DatasetError,
    EmptyAudioError,
    EmptyTranscriptError,
    MetadataFormatError,
    MissingFileError,
    TranscriptError,
)
from tests.conftest import write_tone

NOISY = {"freq_hz": 200.0, "noise": 0.01}  # a 200 Hz tone with a little noise


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def ljspeech_tree(root: Path, metadata: str | bytes | None = None) -> Path:
    for i, seconds in enumerate((0.25, 0.5, 0.75), 1):
        write_tone(root / "wavs" / f"LJ001-000{i}.wav", seconds, 22050, **NOISY, seed=i)
    write(root / "metadata.csv", metadata if metadata is not None else (
        "LJ001-0001|Dr. Smith paid $5.|Doctor Smith paid five dollars.\n"
        "LJ001-0002|Two columns only.\n"
        "\n"
        "LJ001-0003|Raw text|Normalized ünïcode text.\n"
    ))
    return root


def test_ljspeech(tmp_path):
    rows = read_ljspeech(ljspeech_tree(tmp_path / "LJSpeech-1.1"))
    assert [u.id for u in rows] == ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    assert [u.text for u in rows] == [
        "Doctor Smith paid five dollars.", "Two columns only.", "Normalized ünïcode text.",
    ]
    assert [u.duration_s for u in rows] == pytest.approx([0.25, 0.5, 0.75], abs=1e-4)
    assert {(u.speaker, u.language) for u in rows} == {("ljspeech", "en")}
    audio = Path(rows[1].audio)
    expected = (tmp_path / "LJSpeech-1.1" / "wavs" / "LJ001-0002.wav").resolve()
    assert audio.is_absolute() and audio == expected


def test_import_corpus_writes_a_loadable_manifest(tmp_path):
    src = ljspeech_tree(tmp_path / "lj")
    out = tmp_path / "out"
    manifest = import_corpus("ljspeech", src, out)
    assert (out / "manifest.jsonl").is_file() and len(manifest) == 3
    loaded = Manifest.load(out)
    assert [u.to_dict() for u in loaded] == [u.to_dict() for u in manifest]
    assert loaded.audio_path(loaded[0]).is_file()
    assert not list(out.glob("*.wav"))  # audio is referenced, never copied
    row = json.loads((out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[2])
    assert row["text"] == "Normalized ünïcode text."
    assert import_corpus("ljspeech", src, out, language="en-gb")[0].language == "en-gb"


def vctk_tree(root: Path, new_layout: bool = True) -> Path:
    for spk, n in (("p225", 2), ("p315", 1)):
        for i in range(1, n + 1):
            utt = f"{spk}_{i:03d}"
            if new_layout:
                trimmed = root / "wav48_silence_trimmed" / spk
                write_tone(trimmed / f"{utt}_mic1.flac", 0.2 * i, 48000, **NOISY)
                write_tone(trimmed / f"{utt}_mic2.flac", 0.1, 48000, **NOISY)
            else:
                write_tone(root / "wav48" / spk / f"{utt}.wav", 0.2 * i, 48000, **NOISY)
            if spk != "p315":  # like the real corpus, p315 has no transcripts
                write(root / "txt" / spk / f"{utt}.txt", f"Please call Stella {i}.\n")
    return root


@pytest.mark.parametrize("new_layout", [True, False])
def test_vctk(tmp_path, new_layout):
    rows = read_vctk(vctk_tree(tmp_path / "VCTK", new_layout))
    assert [(u.id, u.speaker, u.text) for u in rows] == [
        ("p225_001", "p225", "Please call Stella 1."),
        ("p225_002", "p225", "Please call Stella 2."),
        ("p315_001", "p315", None),
    ]
    assert [u.duration_s for u in rows] == pytest.approx([0.2, 0.4, 0.2], abs=1e-4)
    suffix = "_mic1.flac" if new_layout else ".wav"
    assert all(u.audio.endswith(suffix) for u in rows)


def test_libritts(tmp_path):
    root = tmp_path / "LibriTTS"
    chapter = root / "train-clean-100" / "19" / "198"
    write_tone(chapter / "19_198_000000_000000.wav", 0.3, 24000, **NOISY)
    write(chapter / "19_198_000000_000000.normalized.txt", "Normalized text.")
    write(chapter / "19_198_000000_000000.original.txt", "Original TEXT.")
    write_tone(chapter / "19_198_000001_000002.wav", 0.4, 24000, **NOISY)
    write(chapter / "19_198_000001_000002.original.txt", "Only original.")
    write(chapter / "19_198.trans.tsv", "ignored")
    write_tone(root / "dev-clean" / "84" / "121123" / "84_121123_000008_000000.wav", 0.2, 24000,
               **NOISY)
    rows = read_libritts(root)
    assert [(u.id, u.speaker, u.text, u.extra["subset"]) for u in rows] == [
        ("84_121123_000008_000000", "84", None, "dev-clean"),
        ("19_198_000000_000000", "19", "Normalized text.", "train-clean-100"),
        ("19_198_000001_000002", "19", "Only original.", "train-clean-100"),
    ]
    assert rows[2].duration_s == pytest.approx(0.4)
    # a subset folder on its own reads the same rows
    assert [u.id for u in read_libritts(root / "train-clean-100")] == [u.id for u in rows[1:]]


CV_COLUMNS = "client_id path sentence up_votes down_votes age gender accents locale segment"
CV_HEADER = "\t".join(CV_COLUMNS.split()) + "\n"


def test_commonvoice(tmp_path):
    root = tmp_path / "cv" / "cs"
    write_tone(root / "clips" / "common_voice_cs_1.mp3", 0.3, 48000, **NOISY)  # real clips are MP3
    write_tone(root / "clips" / "common_voice_cs_2.ogg", 0.5, 48000, **NOISY)
    write(root / "validated.tsv", CV_HEADER
          + "abc\tcommon_voice_cs_1.mp3\tDobrý den.\t2\t0\t\t\t\tcs\t\n"
          + "def\tcommon_voice_cs_2.ogg\tJak se máte?\t3\t0\ttwenties\tmale\t\tcs\t\n")
    rows = read_commonvoice(root)
    assert [(u.id, u.speaker, u.text, u.language) for u in rows] == [
        ("common_voice_cs_1", "abc", "Dobrý den.", "cs"),
        ("common_voice_cs_2", "def", "Jak se máte?", "cs"),
    ]
    assert [u.duration_s for u in rows] == pytest.approx([0.3, 0.5], abs=1e-2)
    # older releases have no locale column: the language argument fills it in
    write(root / "train.tsv", "client_id\tpath\tsentence\nxyz\tcommon_voice_cs_1.mp3\tAhoj.\n")
    with pytest.raises(DatasetError, match="locale"):
        read_commonvoice(root, split="train")
    manifest = import_corpus("commonvoice", root, tmp_path / "out", language="cs")
    assert len(manifest) == 2
    assert [u.language for u in read_commonvoice(root, "train", language="cs")] == ["cs"]


def test_commonvoice_format_errors(tmp_path):
    root = tmp_path / "cv"
    write_tone(root / "clips" / "a.wav", 0.2, 16000, **NOISY)
    write(root / "validated.tsv", "client_id\tsentence\nabc\tHi.\n")
    with pytest.raises(MetadataFormatError, match=r"line 1 .*\['path'\]"):
        read_commonvoice(root)
    write(root / "validated.tsv", CV_HEADER + "abc\ta.wav\tHi\tthere.\t0\t0\t\t\t\ten\t\n")
    with pytest.raises(MetadataFormatError, match="line 2 has 11"):
        read_commonvoice(root)
    write(root / "validated.tsv", "client_id\tpath\tsentence\nabc\tmissing.mp3\tHi.\n")
    with pytest.raises(MissingFileError, match="line 2 of validated.tsv"):
        read_commonvoice(root, language="en")
    with pytest.raises(MissingFileError, match="dev.tsv"):
        read_commonvoice(root, split="dev")


def test_folder_without_metadata_is_untranscribed(tmp_path):
    root = tmp_path / "my_voice"
    write_tone(root / "b.flac", 0.3, 16000, **NOISY)
    write_tone(root / "a.wav", 0.2, 22050, **NOISY)
    write_tone(root / "c.ogg", 0.4, 22050, **NOISY)
    write(root / "notes.txt", "not audio")
    write_tone(root / "sub" / "d.wav", 0.2, 22050, **NOISY)  # not directly inside: ignored
    rows = read_folder(root)
    assert [(u.id, u.text, u.speaker, u.language) for u in rows] == [
        ("a", None, "my_voice", "und"), ("b", None, "my_voice", "und"),
        ("c", None, "my_voice", "und"),
    ]
    assert [u.duration_s for u in rows] == pytest.approx([0.2, 0.3, 0.4], abs=1e-3)
    assert import_corpus("folder", root, tmp_path / "o", language="it")[0].language == "it"


def test_folder_with_metadata(tmp_path):
    root = tmp_path / "voice"
    for stem in ("a", "b", "c"):
        write_tone(root / f"{stem}.wav", 0.2, 22050, **NOISY)
    write(root / "metadata.csv", "a|First sentence.\nc.wav|Third one.\n")
    rows = read_folder(root, speaker="anna")
    assert [(u.id, u.text, u.speaker) for u in rows] == [
        ("a", "First sentence.", "anna"), ("b", None, "anna"), ("c", "Third one.", "anna"),
    ]


def test_folder_metadata_naming_a_missing_file(tmp_path):
    root = tmp_path / "voice"
    write_tone(root / "a.wav", 0.2, 22050, **NOISY)
    write(root / "metadata.csv", "a|Fine.\nghost|Not on disk.\n")
    with pytest.raises(MissingFileError, match="line 2 names 'ghost'"):
        read_folder(root)


def test_folder_rejects_two_files_with_one_stem(tmp_path):
    write_tone(tmp_path / "v" / "a.wav", 0.2, 22050, **NOISY)
    write_tone(tmp_path / "v" / "a.flac", 0.2, 22050, **NOISY)
    with pytest.raises(DatasetError, match="share the id 'a'"):
        read_folder(tmp_path / "v")


@pytest.mark.parametrize(
    ("kind", "metadata", "message"),
    [
        ("ljspeech", "LJ001-0001|a|b|c\n", r"line 1 has 4 '\|'-separated columns, expected 2 or 3"),
        ("ljspeech", "LJ001-0001|ok|ok\nLJ001-0002\n", "line 2 has 1"),
        ("folder", "LJ001-0001|text|normalized\n", "line 1 has 3 '.*expected 2"),
        ("folder", "LJ001-0001|Fine.\n\nLJ001-0002\n", "line 3 has 1"),
    ],
)
def test_metadata_with_wrong_column_count(tmp_path, kind, metadata, message):
    root = ljspeech_tree(tmp_path / "c", metadata)
    if kind == "folder":
        root = root / "wavs"
        write(root / "metadata.csv", metadata)
    with pytest.raises(MetadataFormatError, match=message) as info:
        import_corpus(kind, root, tmp_path / "out")
    assert info.value.path.endswith("metadata.csv")
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_non_utf8_transcripts(tmp_path):
    latin1 = "LJ001-0001|ok|ok\nLJ001-0002|Caf\u00e9|Caf\u00e9\n".encode("latin-1")
    with pytest.raises(TranscriptError, match="line 2 is not valid UTF-8") as info:
        read_ljspeech(ljspeech_tree(tmp_path / "lj", latin1))
    assert info.value.path.endswith("metadata.csv")
    root = vctk_tree(tmp_path / "vctk")
    write(root / "txt" / "p225" / "p225_002.txt", "Na\u00efve.".encode("latin-1"))
    with pytest.raises(TranscriptError, match="p225_002.txt"):
        read_vctk(root)


@pytest.mark.parametrize(
    ("kind", "where", "content", "message"),
    [
        ("ljspeech", "metadata.csv", "LJ001-0001|ok|ok\nLJ001-0002| |  \n", "line 2"),
        ("ljspeech", "metadata.csv", "LJ001-0001|\n", "line 1"),
        ("folder", "metadata.csv", "a|Fine.\nb|   \n", "line 2"),
        ("vctk", "txt/p225/p225_001.txt", " \n\n", "line 1"),
        ("libritts", "1/2/1_2_3_4.normalized.txt", "", "line 1"),
    ],
)
def test_empty_transcripts(tmp_path, kind, where, content, message):
    root = tmp_path / "corpus"
    if kind == "ljspeech":
        ljspeech_tree(root)
    elif kind == "folder":
        write_tone(root / "a.wav", 0.2, 22050, **NOISY)
        write_tone(root / "b.wav", 0.2, 22050, **NOISY)
    elif kind == "vctk":
        vctk_tree(root)
    else:
        write_tone(root / "1" / "2" / "1_2_3_4.wav", 0.2, 24000, **NOISY)
    write(root / where, content)
    with pytest.raises(EmptyTranscriptError, match=message) as info:
        import_corpus(kind, root, tmp_path / "out")
    assert info.value.path.endswith(Path(where).name)


@pytest.mark.parametrize(
    ("content", "error"), [("empty", EmptyAudioError), (b"RIFF garbage" * 10, AudioReadError)]
)
def test_bad_audio_names_the_file(tmp_path, content, error):
    root = ljspeech_tree(tmp_path / "lj")
    bad = root / "wavs" / "LJ001-0002.wav"
    if content == "empty":
        sf.write(bad, np.zeros(0, dtype=np.float32), 22050)
    else:
        bad.write_bytes(content)
    with pytest.raises(error, match="LJ001-0002.wav"):
        read_ljspeech(root)
    with pytest.raises(error, match="LJ001-0002.wav"):
        read_folder(root / "wavs")


@pytest.mark.parametrize("kind", ["ljspeech", "vctk", "libritts", "commonvoice", "folder"])
def test_missing_source_folder(tmp_path, kind):
    with pytest.raises(MissingFileError, match="nowhere"):
        import_corpus(kind, tmp_path / "nowhere", tmp_path / "out")


def test_missing_files_inside_the_corpus(tmp_path):
    root = ljspeech_tree(tmp_path / "lj")
    (root / "wavs" / "LJ001-0003.wav").unlink()
    with pytest.raises(MissingFileError, match="LJ001-0003.wav"):
        read_ljspeech(root)
    (root / "metadata.csv").unlink()
    with pytest.raises(MissingFileError, match="metadata.csv"):
        read_ljspeech(root)
    with pytest.raises(DatasetError, match="does not look like VCTK"):
        read_vctk(root)


def test_unknown_kind_and_empty_corpus(tmp_path):
    with pytest.raises(DatasetError, match="unknown corpus kind 'timit'") as info:
        import_corpus("timit", tmp_path, tmp_path / "out")
    assert "commonvoice, folder, libritts, ljspeech, vctk" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no utterances"):
        import_corpus("folder", tmp_path / "empty", tmp_path / "out")
