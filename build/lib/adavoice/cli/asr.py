"""`adavoice asr transcribe|eval` and `adavoice train asr` (the CTC recogniser)."""

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


def train_asr_command(
    data: Path = typer.Argument(..., help="Corpus folder with manifest.jsonl (one language)"),
    out: Path = typer.Option(..., "--out", help="Run folder; the release is written there"),
    preset: str = typer.Option("small", help="tiny | small (~2.9 M parameters)"),
    steps: int = typer.Option(4000, help="Total optimisation steps"),
    max_frames: int = typer.Option(12000, help="Padded mel frames per batch"),
    tokens: str = typer.Option("graphemes", help="graphemes | phonemes"),
    init: Path = typer.Option(None, "--init", help="Continue from this ASR folder"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt"),
) -> None:
    """Train the CTC recogniser (Conformer, SpecAugment, greedy decoding)."""
    from adavoice.train.asr import train_asr

    folder = train_asr(data, out, preset=preset, steps=steps, max_frames=max_frames,
                       tokens=tokens, init=init, device=device, resume=resume)
    typer.echo(f"recogniser written to {folder}")
