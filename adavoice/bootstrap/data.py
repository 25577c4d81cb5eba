"""The bootstrap's inputs, read and checked before any training (DESIGN §7).

- ``paired``: the target voice's transcribed speech (a manifest folder, or audio with
  ``metadata.csv``); its ``valid`` split, when it has one, is held out for the report.
- ``low_quality``: optional multi-speaker transcribed speech (train rows only).
- ``unpaired_speech``: a manifest folder or a folder of audio (one speaker per folder). A
  manifest's text is never trained on: it is kept as ``true_text`` to score pseudo-labels.
- ``unpaired_text``: a UTF-8 file, one sentence a line.
Every audio path is made absolute, so the stages' own manifests can live anywhere.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from adavoice.data.manifest import Manifest, Utterance
from adavoice.errors import DatasetError, MissingFileError, UnknownSymbolError
from adavoice.text.pack import LanguagePack

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class Inputs:
    language: str
    target: str  # the paired data's (main) speaker: the voice the bootstrap is for
    paired: list[Utterance]
    held_out: list[Utterance]
    low_quality: list[Utterance]
    unpaired: list[Utterance]  # text None; extra["true_text"] when the source knew it
    text: list[str]
    evaluation: dict[str, list[Utterance]] = field(default_factory=dict)

    @property
    def trained_speakers(self) -> set[str]:
        """The voices some training input has (paired, low-quality, unpaired); evaluation
        speakers outside it are unseen."""
        return {u.speaker for u in self.paired + self.low_quality + self.unpaired}

    def summary(self) -> dict:
        return {"language": self.language, "target": self.target,
                "paired": len(self.paired), "held_out": len(self.held_out),
                "low_quality": len(self.low_quality), "unpaired_speech": len(self.unpaired),
                "unpaired_text": len(self.text),
                "evaluation": {k: len(v) for k, v in self.evaluation.items()}}


def _absolute(manifest: Manifest, rows) -> list[Utterance]:
    return [dataclasses.replace(u, audio=str(manifest.audio_path(u).resolve())) for u in rows]


def _manifest(folder: Path, language: str, transcripts: bool = True) -> Manifest:
    from adavoice.data.readers import read_folder

    if not Path(folder).is_dir():
        raise MissingFileError("no such folder", path=folder)
    if (Path(folder) / "manifest.jsonl").is_file():
        return Manifest.load(folder)
    return Manifest(read_folder(folder, language, transcripts=transcripts), folder)


def _check_language(rows: list[Utterance], language: str, what: str, folder: Path) -> None:
    others = sorted({u.language for u in rows} - {language})
    if others:
        raise DatasetError(f"the {what} is in {others}, not {language!r}", path=folder,
                           fix=f"pass {what} of {language!r}, or bootstrap that language")


def unknown_letters(text: str, pack: LanguagePack) -> set[str]:
    """Letters of ``text`` the pack's alphabet lacks (case-folded, NFC)."""
    from adavoice.bootstrap.pack import text_letters

    return set(text_letters([text])) - set(pack.alphabet)


def check_text(lines, pack: LanguagePack, what: str, path: Path | None) -> None:
    """UnknownSymbolError naming the first line with letters the language does not have."""
    for number, line in enumerate(lines, 1):
        bad = unknown_letters(line, pack)
        if bad:
            raise UnknownSymbolError(
                f"{what}, line {number}: letters {''.join(sorted(bad))!r} are not in the "
                f"{pack.code} alphabet: {line[:60]!r}", path=path,
                fix="remove lines of other languages, or make the pack from this text "
                    "(adavoice lang new)")


def read_text(path: Path) -> list[str]:
    if not Path(path).is_file():
        raise MissingFileError("no such text file", path=path)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the unpaired text is not UTF-8 ({exc.reason})", path=path) from exc
    # a line without a letter or digit (a row of dashes) would give no tokens to speak
    lines = [" ".join(line.split()) for line in lines if any(c.isalnum() for c in line)]
    if not lines:
        raise DatasetError("the unpaired text file has no sentences", path=path)
    return lines


def paired_texts(folder: Path, language: str) -> list[str]:
    """The transcripts of a paired folder (for a pack made from text), unchecked."""
    return [u.text for u in _manifest(folder, language) if u.text and u.text.strip()]


def read_unpaired_speech(folder: Path, language: str) -> list[Utterance]:
    """A manifest folder, or audio files in ``folder`` and its sub-folders (speaker: the
    folder that holds the file)."""
    from adavoice.audio import audio_info

    folder = Path(folder)
    if (folder / "manifest.jsonl").is_file():
        manifest = Manifest.load(folder)
        _check_language(list(manifest), language, "unpaired speech", folder)
        rows = [dataclasses.replace(u, text=None, extra={**u.extra, "true_text": u.text})
                for u in _absolute(manifest, manifest)]
    elif folder.is_dir():
        rows = []
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            _, duration_s = audio_info(path)
            rows.append(Utterance(id=f"{path.parent.name}-{path.stem}", audio=str(path.resolve()),
                                  text=None, speaker=path.parent.name, language=language,
                                  duration_s=duration_s))
    else:
        raise MissingFileError("no such folder", path=folder)
    if not rows:
        raise DatasetError("no unpaired speech here", path=folder,
                           fix="a manifest folder or a folder of audio files")
    return rows


def read_inputs(language: str, pack: LanguagePack, paired: Path, unpaired_speech: Path,
                unpaired_text: Path, low_quality: Path | None = None,
                evaluation: list[Path] = ()) -> Inputs:
    manifest = _manifest(paired, language)
    rows = [u for u in _absolute(manifest, manifest) if u.text and u.text.strip()]
    if not rows:
        raise DatasetError("the paired data has no transcribed utterances", path=paired,
                           fix="a manifest folder or audio with metadata.csv of the target "
                               "voice")
    _check_language(rows, language, "paired data", paired)
    check_text([u.text for u in rows], pack, "paired transcript", paired)
    held_out = [u for u in rows if u.extra.get("split") == "valid"]
    train = [u for u in rows if u.extra.get("split") != "valid"]
    if not train:
        raise DatasetError("every paired utterance is in the valid split", path=paired)
    speakers = [u.speaker for u in train]
    # the most frequent speaker; a tie goes to the first one seen (the same in every process)
    target = Counter(speakers).most_common(1)[0][0]
    low: list[Utterance] = []
    if low_quality is not None:
        low_manifest = _manifest(low_quality, language)
        low = [u for u in _absolute(low_manifest, low_manifest)
               if u.text and u.extra.get("split") != "valid"]
        _check_language(low, language, "low-quality paired data", low_quality)
        check_text([u.text for u in low], pack, "low-quality transcript", low_quality)
    text = read_text(unpaired_text)
    check_text(text, pack, "unpaired text", unpaired_text)
    evaluation_sets = {}
    for folder in evaluation:
        m = _manifest(folder, language)
        evaluation_sets[Path(folder).name] = [u for u in _absolute(m, m) if u.text]
    return Inputs(language=language, target=target, paired=train, held_out=held_out,
                  low_quality=low, unpaired=read_unpaired_speech(unpaired_speech, language),
                  text=text, evaluation=evaluation_sets)
