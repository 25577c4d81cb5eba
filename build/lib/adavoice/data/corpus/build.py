"""Build a synthetic corpus: system sentences spoken by engine voices, resumable (DESIGN §3).

Layout of ``out``::

    manifest.jsonl               one row per finished utterance, in plan order
    wavs/<voice slug>/<id>.wav   22050 Hz mono PCM-16
    .build/done.jsonl            append-only record of finished utterances

A wav is written under a temporary name and renamed when complete; only then is its record
appended to ``done.jsonl``. ``manifest.jsonl`` is rewritten from the records at the end, after
Ctrl-C (and SIGTERM, which ``adavoice corpus build`` turns into Ctrl-C) and after an engine
failure: it then lists the utterances finished so far. It is replaced atomically, so a reader
sees a whole manifest, the earlier one or the new one, never a cut one. A re-run skips recorded
utterances whose wav is intact and renders the rest, so an interrupted build completes with the
same files a build without interruption writes; a re-run of a complete build writes nothing.

Sentences: every voice speaks the same validation sentences (so speakers can be compared on the
same text) and its own slice of the training sentences (the slices rotate through the seeded
sentence order, so voices do not repeat each other while sentences last). Same seed, same corpus;
a voice's training slice follows its position in ``voices``, so add voices at the end to keep
the others' sentences. Utterances that a changed plan no longer names stay on disk and in
``done.jsonl`` but leave the manifest. Utterance ids are ``<voice slug>-<sentence key>``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import adavoice.data.corpus.text_sources as text_sources
import adavoice.data.corpus.voices as voices
from adavoice.atomic import atomic_write_bytes
from adavoice.data.corpus.voices import EngineVoice
from adavoice.data.manifest import MANIFEST_NAME, Manifest, Utterance
from adavoice.errors import ConfigError, EngineError

STATE_DIR = ".build"
DONE_NAME = "done.jsonl"
DEFAULT_VALID_SHARE = 0.05


@dataclass(frozen=True)
class CorpusItem:
    """One utterance to render: ``audio`` is relative to the corpus folder."""

    id: str
    spec: EngineVoice
    text: str
    split: str
    audio: str


def plan_corpus(language: str, specs: list[EngineVoice], utterances: int, seed: int = 0,
                valid_share: float = DEFAULT_VALID_SHARE) -> list[CorpusItem]:
    """The deterministic list of utterances: per voice, the shared valid sentences first, then
    that voice's slice of the training sentences.

    Raises ConfigError when the language has too few sentences for ``utterances``.
    """
    if utterances < 1:
        raise ConfigError(f"utterances must be at least 1, got {utterances}")
    if not 0.0 <= valid_share < 1.0:
        raise ConfigError(f"valid_share must be in [0, 1), got {valid_share}")
    pool = text_sources.shuffled_sentences(language, seed)
    valid_pool = [s for s in pool if text_sources.is_valid_sentence(s)]
    train_pool = [s for s in pool if not text_sources.is_valid_sentence(s)]
    n_valid = max(1, round(utterances * valid_share)) if valid_share > 0 and utterances > 1 else 0
    n_train = utterances - n_valid
    if n_valid > len(valid_pool) or n_train > len(train_pool):
        raise ConfigError(
            f"language {language!r} has {len(train_pool)} training and {len(valid_pool)} "
            f"validation sentences; {n_train} and {n_valid} per voice were asked for",
            fix="ask for fewer --utterances per voice",
        )
    items = []
    for index, spec in enumerate(specs):
        start = index * n_train
        train = [train_pool[(start + j) % len(train_pool)] for j in range(n_train)]
        for split, sentences in (("valid", valid_pool[:n_valid]), ("train", train)):
            for text in sentences:
                utt_id = f"{spec.slug}-{text_sources.sentence_key(text)[:10]}"
                items.append(CorpusItem(utt_id, spec, text, split,
                                        f"wavs/{spec.slug}/{utt_id}.wav"))
    return items


def build_corpus(out: str | Path, language: str, voices: list[str], utterances: int,
                 seed: int = 0, workers: int = 2, valid_share: float = DEFAULT_VALID_SHARE,
                 progress: bool = True) -> Manifest:
    """Render ``utterances`` sentences per voice SPEC into ``out`` and return its manifest.

    ``workers`` engine calls run at once (the engines are subprocesses, so threads suffice).
    Raises UnknownLanguageError, UnknownEngineError, UnknownVoiceError before any work, and
    EngineError after the run when some utterances failed (the finished ones are kept).
    """
    out = Path(out)
    text_sources.source_for(language)
    specs = _checked_specs(voices)
    items = plan_corpus(language, specs, utterances, seed, valid_share)
    state = out / STATE_DIR / DONE_NAME
    done = _load_done(out, state, items)
    todo = [item for item in items if item.id not in done]
    failures: list[tuple[CorpusItem, Exception]] = []
    try:
        if todo:
            state.parent.mkdir(parents=True, exist_ok=True)
            _render_all(out, language, todo, done, state, failures, len(items), workers, progress)
    finally:
        manifest = _write_manifest(out, items, done)
    if failures:
        item, error = failures[0]
        raise EngineError(
            f"{len(failures)} of {len(items)} utterances failed; first: {item.spec} on "
            f"{item.text!r}: {getattr(error, 'message', error)}",
            fix="fix the cause and run the same command again: finished utterances are kept",
        )
    return manifest


def _checked_specs(voice_specs: list[str]) -> list[EngineVoice]:
    if not voice_specs:
        raise ConfigError("no voices given", fix="pass --voices, e.g. espeak:en-us flite:kal16")
    specs: list[EngineVoice] = []
    for text in voice_specs:
        spec = voices.check_voice(text)
        if spec not in specs:
            specs.append(spec)
    slugs = [spec.slug for spec in specs]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"two voices share a folder name: {slugs}",
                          fix="make the voice specs differ in engine, voice or effects")
    return specs


def _load_done(out: Path, state: Path, items: list[CorpusItem]) -> dict[str, dict]:
    """Finished rows by id: recorded, matching the plan, and with the recorded wav size."""
    if not state.is_file():
        return {}
    planned = {item.id: item for item in items}
    done: dict[str, dict] = {}
    for line in state.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a record cut short by a crash: its utterance is rendered again
        item = planned.get(row.get("id"))
        if item is None or row.get("text") != item.text or row.get("speaker") != str(item.spec):
            continue
        wav = out / item.audio
        if wav.is_file() and wav.stat().st_size == row.get("bytes"):
            done[item.id] = row
        else:
            done.pop(item.id, None)
    return done


def _render_one(out: Path, language: str, item: CorpusItem) -> dict:
    rendering = voices.render(item.spec, item.text, out / item.audio)
    row = Utterance(
        id=item.id, audio=item.audio, text=item.text, speaker=str(item.spec), language=language,
        duration_s=rendering.duration_s, alignment=rendering.alignment,
        extra={"split": item.split, "engine": item.spec.engine},
    ).to_dict()
    row["bytes"] = (out / item.audio).stat().st_size
    return row


def _render_all(out: Path, language: str, todo: list[CorpusItem], done: dict[str, dict],
                state: Path, failures: list, total: int, workers: int, progress: bool) -> None:
    from adavoice.progress import progress_bar

    executor = ThreadPoolExecutor(max_workers=max(1, workers))
    futures: dict[Future, CorpusItem] = {}
    recorded: set[Future] = set()
    with _DoneLog(state) as log, progress_bar(
            total, f"corpus {out.name}", initial=total - len(todo), unit="utt",
            disable=not progress) as bar:
        def record(future: Future) -> None:
            recorded.add(future)
            error = future.exception()
            if error is None:
                row = future.result()
                log.append(row)
                done[row["id"]] = row
                bar.update(1)
            elif not isinstance(error, KeyboardInterrupt):
                failures.append((futures[future], error))

        try:
            futures = {executor.submit(_render_one, out, language, item): item for item in todo}
            for future in as_completed(futures):
                record(future)
        except KeyboardInterrupt:
            executor.shutdown(wait=True, cancel_futures=True)
            for future in futures:  # keep what finished while shutting down
                if future.done() and not future.cancelled() and future not in recorded:
                    if future.exception() is None:
                        record(future)
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


class _DoneLog:
    """Append-only JSON lines, each flushed to disk before the next utterance counts as done."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> "_DoneLog":
        needs_newline = self.path.is_file() and self.path.stat().st_size > 0 and (
            self.path.read_bytes()[-1:] != b"\n"
        )
        self.fh = self.path.open("a", encoding="utf-8")
        if needs_newline:  # a crash cut the last record: start a fresh line after it
            self.fh.write("\n")
        return self

    def append(self, row: dict) -> None:
        self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def __exit__(self, *exc) -> None:
        self.fh.close()


def _write_manifest(out: Path, items: list[CorpusItem], done: dict[str, dict]) -> Manifest:
    """Rows of finished items in plan order; the file is left alone when its content is equal."""
    rows = [{k: v for k, v in done[item.id].items() if k != "bytes"}
            for item in items if item.id in done]
    manifest = Manifest([Utterance.from_dict(row) for row in rows], root=out)
    path = out / MANIFEST_NAME
    content = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if not path.is_file() or path.read_text(encoding="utf-8") != content:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, content.encode("utf-8"), "the manifest")
    return manifest
