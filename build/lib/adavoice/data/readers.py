"""Readers that turn public corpora into manifests without copying audio (DESIGN §3).

Every reader returns ``list[Utterance]`` whose ``audio`` is the **absolute, resolved path** of
the original file, so the manifest may live anywhere (``Manifest.audio_path`` passes absolute
paths through unchanged) and nothing is copied. ``duration_s`` comes from the file header
(:func:`adavoice.audio.audio_info`), so a zero-length or unreadable file fails here, by name,
rather than in the middle of training.

>>> import tempfile, numpy as np, soundfile as sf
>>> src = Path(tempfile.mkdtemp())
>>> (src / "wavs").mkdir()
>>> sf.write(src / "wavs" / "LJ001-0001.wav", np.zeros(11025, dtype=np.float32), 22050)
>>> _ = (src / "metadata.csv").write_text("LJ001-0001|Hello, Dr.|Hello, Doctor.\\n")
>>> [(u.id, u.text, u.duration_s) for u in read_ljspeech(src)]
[('LJ001-0001', 'Hello, Doctor.', 0.5)]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from adavoice.audio import audio_info
from adavoice.data.manifest import Manifest, Utterance
from adavoice.errors import (
    DatasetError,
    EmptyTranscriptError,
    MetadataFormatError,
    MissingFileError,
    TranscriptError,
)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
# The folder reader accepts DESIGN §3's name as well as the LJSpeech-style one.
FOLDER_METADATA_NAMES = ("metadata.csv", "transcripts.csv")
_LIBRITTS_STEM = re.compile(r"^([^_]+)_([^_]+)_[^_]+_[^_]+$")


def import_corpus(
    kind: str, src: str | Path, out: str | Path, language: str | None = None
) -> Manifest:
    """Read corpus ``src`` of the given ``kind``, write ``out/manifest.jsonl``, return it.

    ``kind`` is one of :data:`READERS` (ljspeech, vctk, libritts, commonvoice, folder).
    ``language`` overrides the reader's language (English for ljspeech/vctk/libritts, ``"und"``
    for a folder); for Common Voice it fills in rows whose tsv has no ``locale``.
    Raises DatasetError for an unknown kind, an empty corpus or a repeated utterance id.
    """
    if kind not in READERS:
        raise DatasetError(
            f"unknown corpus kind {kind!r}", fix=f"use one of {', '.join(sorted(READERS))}"
        )
    kwargs = {} if language is None else {"language": language}
    utterances = READERS[kind](src, **kwargs)
    if not utterances:
        raise DatasetError(f"no utterances found for a {kind} corpus", path=src)
    seen: set[str] = set()
    for utt in utterances:
        if utt.id in seen:
            raise DatasetError(
                f"utterance id {utt.id!r} occurs twice", path=src,
                fix="give every audio file a unique name (file stem)",
            )
        seen.add(utt.id)
    manifest = Manifest(utterances, root=out)
    manifest.save(out)
    return manifest


def read_ljspeech(src: str | Path, language: str = "en") -> list[Utterance]:
    """LJSpeech: ``metadata.csv`` lines ``id|raw text|normalized text`` and ``wavs/<id>.wav``.

    The normalized column is used when present and non-blank, else the raw one; two or three
    columns are accepted. Speaker ``"ljspeech"``.
    """
    root = _require_dir(src)
    metadata = root / "metadata.csv"
    utterances = []
    rows = _read_metadata(metadata, columns=(2, 3), fix="use 'id|raw text|normalized text' lines")
    for line_no, fields in rows:
        utt_id, raw = fields[0], fields[1]
        normalized = fields[2] if len(fields) == 3 else ""
        text = normalized or raw
        if not text:
            raise EmptyTranscriptError(f"line {line_no} ({utt_id}) has no text", path=metadata)
        wav = _listed_file(root / "wavs" / f"{utt_id}.wav", metadata, line_no)
        utterances.append(_utterance(utt_id, wav, text, "ljspeech", language))
    return utterances


def read_vctk(src: str | Path, language: str = "en") -> list[Utterance]:
    """VCTK: ``wav48_silence_trimmed/<spk>/<spk>_<nnn>_mic1.flac`` (0.92, mic1 only) or the
    older ``wav48/<spk>/<spk>_<nnn>.wav``, with transcripts in ``txt/<spk>/<spk>_<nnn>.txt``.

    Audio without a transcript (all of p315) gets ``text=None``. Speaker = folder name (pNNN).
    """
    root = _require_dir(src)
    if (root / "wav48_silence_trimmed").is_dir():
        audio_root, pattern, suffix = root / "wav48_silence_trimmed", "*_mic1.flac", "_mic1"
    elif (root / "wav48").is_dir():
        audio_root, pattern, suffix = root / "wav48", "*.wav", ""
    else:
        raise DatasetError(
            "no wav48_silence_trimmed/ or wav48/ folder: this does not look like VCTK", path=root
        )
    utterances = []
    for speaker_dir in sorted(p for p in audio_root.iterdir() if p.is_dir()):
        for audio in sorted(speaker_dir.glob(pattern)):
            utt_id = audio.stem[: len(audio.stem) - len(suffix)]
            transcript = root / "txt" / speaker_dir.name / f"{utt_id}.txt"
            text = _read_transcript_file(transcript) if transcript.is_file() else None
            utterances.append(_utterance(utt_id, audio, text, speaker_dir.name, language))
    return utterances


def read_libritts(src: str | Path, language: str = "en") -> list[Utterance]:
    """LibriTTS: ``<subset>/<spk>/<chapter>/<spk>_<chapter>_<x>_<y>.wav`` with
    ``<stem>.normalized.txt`` beside it (fallback ``<stem>.original.txt``; neither -> None).

    ``src`` may be the LibriTTS root or one subset folder. Speaker = the id's first field;
    the subset folder's name is kept in the row as ``"subset"``.
    """
    root = _require_dir(src)
    utterances = []
    for wav in sorted(root.rglob("*.wav")):
        match = _LIBRITTS_STEM.match(wav.stem)
        if match is None:
            continue  # not a LibriTTS utterance (e.g. a stray file); LibriTTS names are strict
        text = None
        for kind in ("normalized", "original"):
            transcript = wav.with_name(f"{wav.stem}.{kind}.txt")
            if transcript.is_file():
                text = _read_transcript_file(transcript)
                break
        subset = wav.parents[2].name if len(wav.relative_to(root).parts) >= 4 else root.name
        utt = _utterance(wav.stem, wav, text, match.group(1), language, subset=subset)
        utterances.append(utt)
    return utterances


def read_commonvoice(
    src: str | Path, split: str = "validated", language: str | None = None
) -> list[Utterance]:
    """Common Voice: ``<split>.tsv`` (header with client_id, path, sentence, maybe locale)
    and ``clips/<path>``.

    Speaker = client_id; language = the row's ``locale`` when the tsv has one, else
    ``language`` (required then). Real clips are MP3: they need a libsndfile with MP3
    support (1.1+), otherwise audio_info raises AudioReadError naming the clip.
    """
    root = _require_dir(src)
    tsv = root / f"{split}.tsv"
    if not tsv.is_file():
        raise MissingFileError(f"no {split}.tsv in the Common Voice folder", path=tsv)
    lines = _read_text_file(tsv).splitlines()
    if not lines:
        raise MetadataFormatError("the tsv is empty (line 1 should be the header)", path=tsv)
    header = lines[0].split("\t")
    missing = [c for c in ("client_id", "path", "sentence") if c not in header]
    if missing:
        raise MetadataFormatError(
            f"line 1 (header) lacks column(s) {missing}", path=tsv,
            fix="use the tsv files shipped with Common Voice",
        )
    col = {name: i for i, name in enumerate(header)}
    utterances = []
    for line_no, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise MetadataFormatError(
                f"line {line_no} has {len(fields)} tab-separated fields, header has {len(header)}",
                path=tsv, fix="remove stray tabs or newlines inside the sentence",
            )
        text = fields[col["sentence"]].strip()
        if not text:
            raise EmptyTranscriptError(f"line {line_no} has an empty sentence", path=tsv)
        locale = fields[col["locale"]].strip() if "locale" in col else ""
        if not (locale or language):
            raise DatasetError(
                f"line {line_no} has no locale column", path=tsv,
                fix="pass language= (--language) for this Common Voice release",
            )
        clip = _listed_file(root / "clips" / fields[col["path"]], tsv, line_no)
        speaker = fields[col["client_id"]].strip()
        utterances.append(_utterance(clip.stem, clip, text, speaker, locale or language))
    return utterances


def read_folder(
    src: str | Path, language: str = "und", speaker: str | None = None,
    transcripts: bool = True,
) -> list[Utterance]:
    """A plain folder: every .wav/.flac/.ogg/.mp3 directly inside ``src`` (sorted), with an
    optional ``metadata.csv`` (or ``transcripts.csv``) of ``<file stem>|<text>`` lines.

    Without a metadata file every text is None (untranscribed); with one, files it does not
    list are untranscribed and files it lists must exist. Speaker defaults to the folder name.
    ``transcripts=False`` never opens the metadata file (untranscribed use).
    """
    root = _require_dir(src)
    speaker = speaker or root.name
    audio_files = sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    )
    by_stem: dict[str, Path] = {}
    for audio in audio_files:
        if audio.stem in by_stem:
            raise DatasetError(
                f"{by_stem[audio.stem].name} and {audio.name} share the id {audio.stem!r}",
                path=root, fix="keep one audio file per name",
            )
        by_stem[audio.stem] = audio
    texts = _folder_texts(root, by_stem) if transcripts else {}
    return [
        _utterance(stem, audio, texts.get(stem), speaker, language)
        for stem, audio in by_stem.items()
    ]


READERS: dict[str, Callable[..., list[Utterance]]] = {
    "ljspeech": read_ljspeech,
    "vctk": read_vctk,
    "libritts": read_libritts,
    "commonvoice": read_commonvoice,
    "folder": read_folder,
}


def _folder_texts(root: Path, by_stem: dict[str, Path]) -> dict[str, str]:
    """stem -> text from the folder's metadata file, checking every listed file exists."""
    present = [root / name for name in FOLDER_METADATA_NAMES if (root / name).is_file()]
    if len(present) > 1:
        raise DatasetError(
            "both metadata.csv and transcripts.csv are present", path=root, fix="keep one of them"
        )
    if not present:
        return {}
    metadata, texts = present[0], {}
    rows = _read_metadata(metadata, columns=(2,))
    if not rows:  # treating it as absent would silently switch adaptation to untranscribed
        raise MetadataFormatError(
            f"{metadata.name} is empty", path=metadata,
            fix="remove it to adapt without transcripts, or fill it with "
                "'<file stem>|<text>' lines")
    for line_no, (name, text) in rows:
        stem = name if name in by_stem else Path(name).stem  # "a1" or "a1.wav"
        if stem not in by_stem:
            raise MissingFileError(
                f"line {line_no} names {name!r} but no such audio file is in the folder",
                path=metadata, fix="add the audio file or remove the line",
            )
        if stem in texts:
            raise MetadataFormatError(f"line {line_no} repeats {name!r}", path=metadata)
        if not text:
            raise EmptyTranscriptError(f"line {line_no} ({name}) has no text", path=metadata)
        texts[stem] = text
    return texts


def _utterance(
    utt_id: str, audio: Path, text: str | None, speaker: str, language: str, **extra: str
) -> Utterance:
    _, duration_s = audio_info(audio)  # raises MissingFileError / AudioReadError / EmptyAudioError
    return Utterance(
        id=utt_id, audio=str(audio.resolve()), text=text, speaker=speaker, language=language,
        duration_s=duration_s, extra=dict(extra),
    )


def _require_dir(src: str | Path) -> Path:
    root = Path(src).expanduser()
    if not root.exists():
        raise MissingFileError("corpus folder not found", path=root)
    if not root.is_dir():
        raise DatasetError("expected a corpus folder, got a file", path=root)
    return root


def _listed_file(path: Path, listed_in: Path, line_no: int) -> Path:
    if not path.is_file():
        raise MissingFileError(
            f"line {line_no} of {listed_in.name} names an audio file that does not exist",
            path=path, fix="restore the file or remove the line",
        )
    return path


def _read_text_file(path: Path) -> str:
    """Decode a transcript/metadata file as UTF-8 (a BOM is allowed) or raise TranscriptError."""
    if not path.is_file():
        raise MissingFileError("metadata/transcript file not found", path=path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_no = raw[: exc.start].count(b"\n") + 1
        raise TranscriptError(
            f"line {line_no} is not valid UTF-8 (byte {exc.start}: {raw[exc.start]:#04x})",
            path=path, fix="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        ) from exc


def _read_transcript_file(path: Path) -> str:
    """A one-utterance transcript (.txt): whitespace collapsed, must not be empty."""
    text = " ".join(_read_text_file(path).split())
    if not text:
        raise EmptyTranscriptError("line 1: the transcript is empty", path=path)
    return text


def _read_metadata(
    path: Path, columns: tuple[int, ...], fix: str | None = None
) -> list[tuple[int, list[str]]]:
    """(line number, stripped fields) for each non-blank ``a|b[|c]`` line."""
    rows = []
    for line_no, line in enumerate(_read_text_file(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) not in columns:
            expected = " or ".join(str(c) for c in columns)
            raise MetadataFormatError(
                f"line {line_no} has {len(fields)} '|'-separated columns, expected {expected}",
                path=path, fix=fix,
            )
        if not fields[0]:
            raise MetadataFormatError(f"line {line_no} has an empty id column", path=path)
        rows.append((line_no, fields))
    return rows
