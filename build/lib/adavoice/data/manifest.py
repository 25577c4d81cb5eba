"""The manifest: a dataset folder with ``manifest.jsonl``, one utterance per line (DESIGN §3).

>>> u = Utterance(id="a1", audio="wavs/a1.wav", text="Hello.", speaker="s1", language="en",
...               duration_s=1.5)
>>> Utterance.from_dict(u.to_dict()) == u
True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from adavoice.errors import DatasetError, MissingFileError

MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class Utterance:
    """One row. ``audio`` is relative to the manifest folder (or absolute for imported corpora);
    ``text`` is None for untranscribed speech; ``alignment`` holds engine phone timings
    as ``[[phone, start_s, end_s], ...]`` when the source knows them."""

    id: str
    audio: str
    text: str | None
    speaker: str
    language: str
    duration_s: float
    alignment: list | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self.id, "audio": self.audio, "text": self.text, "speaker": self.speaker,
            "language": self.language, "duration_s": round(float(self.duration_s), 4),
        }
        if self.alignment is not None:
            row["alignment"] = self.alignment
        row.update(self.extra)
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "Utterance":
        known = {"id", "audio", "text", "speaker", "language", "duration_s", "alignment"}
        if not isinstance(row, dict):
            raise DatasetError(f"manifest row is not an object: {row!r}")
        missing = {"id", "audio", "speaker", "language", "duration_s"} - set(row)
        if missing:
            raise DatasetError(f"manifest row lacks {sorted(missing)}: {row}")
        if row.get("text") is not None and not isinstance(row["text"], str):
            raise DatasetError(f"manifest row's text is not a string: {row['text']!r}")
        try:
            duration_s = float(row["duration_s"])
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"manifest row's duration_s is not a number: "
                               f"{row['duration_s']!r}") from exc
        return cls(
            id=str(row["id"]), audio=str(row["audio"]), text=row.get("text"),
            speaker=str(row["speaker"]), language=str(row["language"]),
            duration_s=duration_s, alignment=row.get("alignment"),
            extra={k: v for k, v in row.items() if k not in known},
        )


class Manifest:
    """An ordered list of utterances bound to the folder their relative paths start from.

    >>> m = Manifest([], root=".")
    >>> len(m)
    0
    """

    def __init__(self, utterances: Iterable[Utterance], root: str | Path):
        self.utterances = list(utterances)
        self.root = Path(root)

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __getitem__(self, index: int) -> Utterance:
        return self.utterances[index]

    def audio_path(self, utt: Utterance) -> Path:
        path = Path(utt.audio)
        return path if path.is_absolute() else self.root / path

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})

    def filter(self, **equal: Any) -> "Manifest":
        """Rows whose fields equal the given values, e.g. ``m.filter(speaker="flite:rms")``."""
        rows = [u for u in self.utterances if all(getattr(u, k) == v for k, v in equal.items())]
        return Manifest(rows, self.root)

    def split(self, name: str) -> "Manifest":
        """Rows whose ``extra['split']`` equals ``name`` (corpora built here carry train/valid)."""
        return Manifest([u for u in self.utterances if u.extra.get("split") == name], self.root)

    @classmethod
    def load(cls, folder: str | Path) -> "Manifest":
        folder = Path(folder)
        path = folder / MANIFEST_NAME if folder.is_dir() else folder
        if not path.is_file():
            raise MissingFileError(
                f"no {MANIFEST_NAME} here", path=path,
                fix="import the corpus first with `adavoice corpus import` or `corpus build`",
            )
        rows = []
        try:
            lines = path.read_text(encoding="utf-8-sig").split("\n")  # a BOM is tolerated
        except UnicodeDecodeError as exc:
            raise DatasetError(f"not UTF-8 text ({exc})", path=path,
                               fix="save the manifest as UTF-8") from exc
        for line_no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(Utterance.from_dict(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"line {line_no} is not JSON ({exc})", path=path) from exc
            except DatasetError as exc:
                raise DatasetError(f"line {line_no}: {exc.message}", path=path) from exc
        return cls(rows, path.parent)

    def save(self, folder: str | Path | None = None) -> Path:
        """Write ``manifest.jsonl`` atomically (temp file + rename)."""
        folder = Path(folder) if folder is not None else self.root
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MANIFEST_NAME
        write_jsonl_atomic(path, (u.to_dict() for u in self.utterances))
        return path


def write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
