"""`adavoice asr transcribe|eval` (the CTC recogniser; `adavoice train asr` trains it)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("transcribe")
def transcribe_command(
    model: str = typer.Argument(..., help="An ASR folder, or a model folder with asr/"),
    audio: list[Path] = typer.Argument(..., help="Audio files"),
) -> None:
    """Print `<file>\\t<transcript>` per file (greedy CTC)."""
    from adavoice.errors import MissingFileError
    from adavoice.models.asr import Recogniser

    for path in audio:
        if not path.is_file():
            raise MissingFileError("no such audio file", path=path)
    recogniser = Recogniser.load(model)
    for path, text in zip(audio, recogniser.transcribe(audio), strict=True):
        typer.echo(f"{path}\t{text}")


@app.command("eval")
def eval_command(
    model: str = typer.Argument(..., help="An ASR folder, or a model folder with asr/"),
    data: Path = typer.Argument(..., help="A manifest folder, or audio with metadata.csv"),
    json_out: Path = typer.Option(None, "--json", help="Write cer, wer (fractions) and "
                                                       "per-utterance rows here"),
) -> None:
    """CER and WER of the recogniser on every transcribed utterance of DATA."""
    from adavoice.atomic import atomic_write_bytes
    from adavoice.models.asr import Recogniser

    result = Recogniser.load(model).evaluate(data)
    if json_out is not None:
        atomic_write_bytes(json_out, (json.dumps(result, indent=2, ensure_ascii=False)
                                      + "\n").encode(), "the report")
    typer.echo(f"CER {100 * result['cer']:.2f} %  WER {100 * result['wer']:.2f} %  "
               f"({result['utterances']} utterances)")

