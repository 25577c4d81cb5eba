"""`adavoice synth`: speak text with a base model speaker."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer

from adavoice.errors import EmptyTextError, MissingFileError, TranscriptError


def read_lines(path: Path) -> list[str]:
    """The file's lines, stripped, blank ones kept so that a line's index is its position;
    trailing blank lines are dropped. EmptyTextError when no line has text."""
    if not path.is_file():
        raise MissingFileError("text file not found", path=path)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as exc:
        raise TranscriptError("text file is not UTF-8", path=path) from exc
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise EmptyTextError("text file has no lines", path=path)
    return lines


def output_names(count: int) -> list[str]:
    """00.wav, 01.wav, ... zero-padded to the width the count needs, at least 2."""
    width = max(2, len(str(count - 1)))
    return [f"{index:0{width}d}.wav" for index in range(count)]


def check_lines(lines: list[str], base, path: Path) -> None:
    """Tokenise every non-blank line as ``base`` will (long lines in pieces) before any audio
    is written; an error names the line (1-based). Dropped-character warnings are left to
    synthesis, which gives them again."""
    import warnings

    from adavoice.errors import AdavoiceError
    from adavoice.text.normalize import TextWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TextWarning)
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                base.token_pieces(line)
            except AdavoiceError as exc:
                raise type(exc)(f"line {number}: {exc.message}", path=path, fix=exc.fix) from exc


def synth_command(
    text: str = typer.Argument(None, help="Text to speak"),
    model: str = typer.Option(None, "--model",
                              help="'demo' (default) or a base-model folder; with --voice, "
                                   "the base to use instead of the one the bundle names"),
    speaker: str = typer.Option(None, "--speaker",
                                help="Speaker id (see --list-speakers; default: the first)"),
    voice: Path = typer.Option(None, "--voice", help="An adapted voice folder (adavoice adapt)"),
    out: Path = typer.Option(None, "--out", help="Output WAV for a single text"),
    text_file: Path = typer.Option(None, "--text-file", help="One sentence per line"),
    out_dir: Path = typer.Option(None, "--out-dir", help="Folder for --text-file outputs"),
    length_scale: float = typer.Option(None, help=">1 speaks slower (default 1, or the voice's)"),
    pitch_shift: float = typer.Option(None, help="Semitones (default 0, or the voice's)"),
    energy_scale: float = typer.Option(None, help="Default 1, or the voice's"),
    vocoder: str = typer.Option(None, help="auto (default: the base's best) | universal | "
                                           "fast | griffin-lim"),
    precision: str = typer.Option("auto", help="Decoder precision: auto (bfloat16 where the "
                                  "CPU has AMX, else float32) | float32 | bfloat16"),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace output files that already exist"),
    list_speakers: bool = typer.Option(False, "--list-speakers", help="Print speakers, exit"),
) -> None:
    """Synthesize speech with a base model (or, with --voice, an adapted voice)."""
    from adavoice.api import BaseModel, SynthesisConfig, Voice
    from adavoice.audio import check_output_path, save_audio_pieces

    # argument checks first: loading a model takes seconds
    if voice is not None and (speaker is not None or list_speakers):
        raise typer.BadParameter("--voice replaces --speaker / --list-speakers")
    lines = None
    if not list_speakers:
        if text_file is not None:
            if out_dir is None:
                raise typer.BadParameter("--text-file needs --out-dir")
            if text is not None or out is not None:
                raise typer.BadParameter("--text-file and --out-dir replace TEXT and --out")
            lines = read_lines(text_file)
            if not overwrite:
                _refuse_existing([out_dir / n for n, line in zip(output_names(len(lines)), lines,
                                                                 strict=True) if line])
        elif text is None or out is None:
            raise typer.BadParameter("give TEXT and --out, or --text-file and --out-dir")
        else:
            check_output_path(out)
            if not overwrite:
                _refuse_existing([out])
    settings = SynthesisConfig(length_scale=length_scale, pitch_shift=pitch_shift,
                               energy_scale=energy_scale, vocoder=vocoder)
    if voice is not None:
        speaker_model = Voice.load(voice, base=model)
        speaker_model.base.set_precision(precision)
        base, knobs = speaker_model.base, {}
    else:
        speaker_model = BaseModel.load(model or "demo", precision=precision)
        if list_speakers:
            for name in speaker_model.speakers:
                typer.echo(name)
            return
        base, knobs = speaker_model, {"speaker": speaker}
    with _text_warnings_as_lines():
        if lines is not None:
            check_lines(lines, base, text_file)
            _speak_lines(speaker_model, lines, out_dir, settings, knobs)
            return
        # piece by piece to the file: memory stays flat however long the text is
        save_audio_pieces(out, speaker_model.synthesize_stream(text, config=settings, **knobs),
                          speaker_model.sample_rate)
    typer.echo(f"wrote {out}")


def _refuse_existing(paths: list[Path]) -> None:
    from adavoice.audio import path_exists

    existing = [p for p in paths if path_exists(p)]
    if existing:
        from adavoice.errors import ConfigError

        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise ConfigError(f"the output exists{more}", path=existing[0],
                          fix="choose another name, or pass --overwrite")


def _speak_lines(speaker_model, lines: list[str], out_dir: Path, settings, knobs: dict) -> None:
    from adavoice.audio import save_audio_pieces

    written, blank = 0, []
    for number, (line, name) in enumerate(zip(lines, output_names(len(lines)), strict=True),
                                          start=1):
        if not line:
            blank.append(number)
            continue
        save_audio_pieces(out_dir / name,
                          speaker_model.synthesize_stream(line, config=settings, **knobs),
                          speaker_model.sample_rate)
        written += 1
    plural = "s" if len(blank) > 1 else ""
    skipped = f" (no file{plural} for blank line{plural} {', '.join(map(str, blank))})"
    typer.echo(f"wrote {written} file{'s' if written != 1 else ''} to {out_dir}"
               f"{skipped if blank else ''}")


@contextmanager
def _text_warnings_as_lines():
    """Print the text front end's warnings (dropped characters) as ``warning: ...`` lines,
    as ``adavoice lang show`` does, instead of Python's warning format with a source line."""
    import warnings

    from adavoice.text.normalize import TextWarning

    foreign = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TextWarning)
            try:
                yield
            finally:
                seen = set()
                for item in list(caught):
                    message = str(item.message)
                    if not issubclass(item.category, TextWarning):
                        foreign.append(item)
                    elif message not in seen:
                        seen.add(message)
                        typer.echo(f"warning: {message}", err=True)
    finally:
        # other warnings are not ours to reformat; shown once the recording has ended (shown
        # inside it, each one was recorded again and the loop never ended)
        for item in foreign:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
