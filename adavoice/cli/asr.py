"""`adavoice asr transcribe|eval|adapt`: the project's CTC recogniser (`adavoice train asr`
trains it) or a Hugging Face ``Wav2Vec2ForCTC`` folder on disk, LoRA-adapted with peft
(adavoice.models.hf_asr)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)

MODEL_HELP = ("An ASR folder, a model folder with asr/, a Hugging Face Wav2Vec2ForCTC folder, "
              "or a LoRA adapter folder made by `adavoice asr adapt`")
ADAPTER_OPTION = typer.Option(None, "--adapter", help="A LoRA adapter folder for a Hugging "
                                                      "Face model")
DECODER_OPTION = typer.Option("auto", "--decoder", help="auto | greedy | beam (auto: beam with "
                                                        "the model's character n-gram lm.json "
                                                        "when it has one, else greedy)")


@app.command("transcribe")
def transcribe_command(
    model: str = typer.Argument(..., help=MODEL_HELP),
    audio: list[Path] = typer.Argument(..., help="Audio files"),
    adapter: Path = ADAPTER_OPTION,
    decoder: str = DECODER_OPTION,
) -> None:
    """Print `<file>\\t<transcript>` per file (greedy CTC)."""
    from adavoice.errors import MissingFileError
    from adavoice.models.hf_asr import load_recogniser

    for path in audio:
        if not path.is_file():
            raise MissingFileError("no such audio file", path=path)
    recogniser = load_recogniser(model, adapter, decoder=decoder)
    for path, text in zip(audio, recogniser.transcribe(audio), strict=True):
        typer.echo(f"{path}\t{text}")


@app.command("eval")
def eval_command(
    model: str = typer.Argument(..., help=MODEL_HELP),
    data: Path = typer.Argument(..., help="A manifest folder, or audio with metadata.csv"),
    adapter: Path = ADAPTER_OPTION,
    decoder: str = DECODER_OPTION,
    json_out: Path = typer.Option(None, "--json", help="Write cer, wer (fractions) and "
                                                       "per-utterance rows here"),
) -> None:
    """CER and WER of the recogniser on every transcribed utterance of DATA."""
    from adavoice.atomic import atomic_write_bytes
    from adavoice.models.hf_asr import load_recogniser

    result = load_recogniser(model, adapter, decoder=decoder).evaluate(data)
    if json_out is not None:
        atomic_write_bytes(json_out, (json.dumps(result, indent=2, ensure_ascii=False)
                                      + "\n").encode(), "the report")
    typer.echo(f"CER {100 * result['cer']:.2f} %  WER {100 * result['wer']:.2f} %  "
               f"({result['utterances']} utterances)")



@app.command("adapt")
def adapt_command(
    model: Path = typer.Argument(..., help="A Hugging Face Wav2Vec2ForCTC folder"),
    data: Path = typer.Argument(..., help="Transcribed speech: a manifest folder, or audio "
                                          "with metadata.csv"),
    out: Path = typer.Option(..., "--out", help="The adapter folder (LoRA weights only)"),
    steps: int = typer.Option(200, "--steps"),
    rank: int = typer.Option(8, "--rank", help="LoRA rank"),
    learning_rate: float = typer.Option(5e-4, "--lr"),
    batch_size: int = typer.Option(8, "--batch-size"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
) -> None:
    """LoRA-adapt a Hugging Face CTC model to DATA with peft; only the adapter is written."""
    from adavoice.models.hf_asr import adapt_lora

    recogniser = adapt_lora(model, data, out, steps=steps, rank=rank,
                            learning_rate=learning_rate, batch_size=batch_size, device=device,
                            progress=True)
    typer.echo(f"adapter written to {recogniser.adapter}")
