"""`adavoice synth`: speak text with a base model speaker."""

from __future__ import annotations

from pathlib import Path

import typer

from adavoice.errors import EmptyTextError, MissingFileError, TranscriptError


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise MissingFileError("text file not found", path=path)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as exc:
        raise TranscriptError("text file is not UTF-8", path=path) from exc
    lines = [line for line in lines if line]
    if not lines:
        raise EmptyTextError("text file has no lines", path=path)
    return lines


def output_names(count: int) -> list[str]:
    """00.wav, 01.wav, ... zero-padded to the width the count needs, at least 2."""
    width = max(2, len(str(count - 1)))
    return [f"{index:0{width}d}.wav" for index in range(count)]


def synth_command(
    text: str = typer.Argument(None, help="Text to speak"),
    model: str = typer.Option(None, "--model",
                              help="'demo' (default) or a base-model folder; with --voice, "
                                   "the base to use instead of the one the bundle names"),
    speaker: str = typer.Option(None, "--speaker", help="Speaker id (see --list-speakers)"),
    voice: Path = typer.Option(None, "--voice", help="An adapted voice folder (adavoice adapt)"),
    out: Path = typer.Option(None, "--out", help="Output WAV for a single text"),
    text_file: Path = typer.Option(None, "--text-file", help="One sentence per line"),
    out_dir: Path = typer.Option(None, "--out-dir", help="Folder for --text-file outputs"),
    length_scale: float = typer.Option(None, help=">1 speaks slower (default 1, or the voice's)"),
    pitch_shift: float = typer.Option(None, help="Semitones (default 0, or the voice's)"),
    energy_scale: float = typer.Option(None, help="Default 1, or the voice's"),
    vocoder: str = typer.Option("auto", help="auto | neural | griffin-lim"),
    precision: str = typer.Option("auto", help="Decoder precision: auto (bfloat16 where the "
                                  "CPU has AMX, else float32) | float32 | bfloat16"),
    list_speakers: bool = typer.Option(False, "--list-speakers", help="Print speakers, exit"),
) -> None:
    """Synthesize speech with a base model (or, with --voice, an adapted voice)."""
    from adavoice.api import BaseModel, Voice

    if voice is not None:
        if speaker is not None or list_speakers:
            raise typer.BadParameter("--voice replaces --speaker / --list-speakers")
        speaker_model = Voice.load(voice, base=model)
        speaker_model.base.set_precision(precision)
        knobs = {}
    else:
        speaker_model = BaseModel.load(model or "demo", precision=precision)
        if list_speakers:
            for name in speaker_model.speakers:
                typer.echo(name)
            return
        knobs = {"speaker": speaker}
    scales = {"length_scale": length_scale, "pitch_shift": pitch_shift,
              "energy_scale": energy_scale}
    knobs.update({k: v for k, v in scales.items() if v is not None}, vocoder=vocoder)
    if text_file is not None:
        if out_dir is None:
            raise typer.BadParameter("--text-file needs --out-dir")
        lines = read_lines(text_file)
        for line, name in zip(lines, output_names(len(lines)), strict=True):
            speaker_model.synthesize(line, **knobs).save(out_dir / name)
        typer.echo(f"wrote {len(lines)} files to {out_dir}")
        return
    if text is None or out is None:
        raise typer.BadParameter("give TEXT and --out, or --text-file and --out-dir")
    speaker_model.synthesize(text, **knobs).save(out)
    typer.echo(f"wrote {out}")
