"""`adavoice corpus build|import`: thin shells over :func:`adavoice.data.corpus.build_corpus`
and :func:`adavoice.data.readers.import_corpus`."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from adavoice.errors import ConfigError, UnknownLanguageError


def corpus_languages() -> list[str]:
    """Languages a corpus can be built in: a language pack and a text source both exist."""
    from adavoice.data.corpus.text_sources import languages
    from adavoice.text import available_codes

    return sorted(set(available_codes()) & set(languages()))

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so the build stops the way it does on Ctrl-C."""


@contextmanager
def _sigterm_stops_like_ctrl_c() -> Iterator[None]:
    """Turn the first SIGTERM into :class:`_Terminated` in the main thread. The default action
    would kill the process at once, leaving the running renders' temporary folders behind and
    no manifest; raised, it lets them finish and `finally` blocks clean up. A second SIGTERM
    kills at once."""

    def stop(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: signals are the caller's business
        yield
        return
    try:
        yield
    finally:
        # None: a handler set outside Python, which signal cannot put back; default is closest
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _summary(manifest, out: Path) -> str:
    hours = sum(u.duration_s for u in manifest) / 3600
    return (f"{len(manifest)} utterances, {len(manifest.speakers)} speakers, {hours:.2f} h "
            f"-> {out / 'manifest.jsonl'}")


@app.command("build")
def build_command(
    out: Path = typer.Argument(..., help="Corpus folder (created; re-running resumes it)."),
    more_voices: list[str] | None = typer.Argument(
        None, hidden=True, metavar="SPEC", help="Further voice SPECs following --voices."
    ),
    language: str = typer.Option(..., "--language", "-l",
        help="Text language: " + ", ".join(corpus_languages()) + "."),
    voices: list[str] = typer.Option(
        ..., "--voices",
        help="Voice SPECs engine:voice[@sox effects], space-separated, e.g. "
             "--voices espeak:en-us+f3 flite:rms 'flite:rms@speed 1.12 tempo 0.893'.",
    ),
    utterances: int = typer.Option(..., "--utterances", "-n", help="Utterances per voice."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same corpus."),
    workers: int = typer.Option(
        os.cpu_count() or 2, "--workers", help="Engine calls at once (default: CPU cores)."
    ),
    valid_share: float = typer.Option(
        0.05, "--valid-share", help="Share of each voice's utterances from the shared valid set."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Speak system sentences with installed engines into 22050 Hz wavs + manifest.jsonl."""
    from adavoice.data.corpus import build_corpus

    if language not in corpus_languages():
        raise UnknownLanguageError(f"cannot build a corpus in {language!r}: it needs a language "
                                   "pack and a text source",
                                   fix=f"use one of {', '.join(corpus_languages())}")
    if out.exists() and not out.is_dir():
        raise ConfigError("the corpus folder path is a file", path=out,
                          fix="choose a new or existing folder")
    if workers < 1:
        raise ConfigError(f"--workers is {workers}, must be at least 1")
    all_voices = list(voices) + list(more_voices or [])
    if not all_voices:
        raise ConfigError("no voices given", fix="pass --voices espeak:en-us flite:kal16 ...")
    try:
        with _sigterm_stops_like_ctrl_c():
            manifest = build_corpus(out, language, all_voices, utterances, seed=seed,
                                    workers=workers, valid_share=valid_share, progress=progress)
    except KeyboardInterrupt as stopped:
        typer.echo(f"stopped: finished utterances are kept in {out}; run the same command "
                   "again to finish the corpus", err=True)
        if isinstance(stopped, _Terminated):
            raise typer.Exit(128 + signal.SIGTERM) from None  # the shell's code for SIGTERM
        raise
    typer.echo(_summary(manifest, out))


@app.command("import")
def import_command(
    kind: str = typer.Argument(..., help="ljspeech, vctk, libritts, commonvoice or folder."),
    src: Path = typer.Argument(..., help="The corpus as downloaded."),
    out: Path = typer.Argument(..., help="Folder for manifest.jsonl (audio is not copied)."),
    language: str | None = typer.Option(None, "--language", "-l", help="Override the language."),
) -> None:
    """Convert a public corpus into a manifest without copying its audio."""
    from adavoice.data.readers import import_corpus

    manifest = import_corpus(kind, src, out, language=language)
    typer.echo(_summary(manifest, out))
