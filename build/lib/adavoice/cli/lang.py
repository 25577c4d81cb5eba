"""`adavoice lang ...`: list the installed language packs, show what the front end makes of text.

A thin shell over :mod:`adavoice.text`; typed errors propagate to ``adavoice.cli.main``, which
prints them in one line.

>>> from typer.testing import CliRunner
>>> result = CliRunner().invoke(app, ["show", "en", "Hello 2"])
>>> result.output.splitlines()[0]
'normalized: hello two'
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from adavoice.text import LanguagePack, SymbolTable, TextProcessor, available_packs

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None)

# How the word separator is shown when tokens are joined by spaces.
WORD_SEPARATOR_SHOWN = "|"

PACKS_DIR_OPTION = typer.Option(
    None, "--packs-dir", help="Folder of language packs (default: the repository's languages/)."
)


@app.command("list")
def list_command(packs_dir: Path | None = PACKS_DIR_OPTION) -> None:
    """List installed language packs: code, name, tokenizer, symbol count, espeak voice."""
    packs = available_packs(packs_dir)
    if not packs:
        typer.echo("no language packs found", err=True)
        raise typer.Exit(1)
    typer.echo(f"{'code':<6} {'name':<12} {'tokenizer':<10} {'symbols':>7}  espeak")
    for pack in packs:
        count = len(SymbolTable.from_pack(pack))
        typer.echo(
            f"{pack.code:<6} {pack.name:<12} {pack.tokenizer:<10} {count:>7}  {pack.espeak_voice}"
        )


@app.command("show")
def show_command(
    code: str = typer.Argument(..., help="Language code (`adavoice lang list`) or pack folder."),
    text: str = typer.Argument(..., help="Text to normalise and tokenise."),
    tokenizer: str | None = typer.Option(
        None, "--tokenizer", "-t", help="graphemes or phonemes (default: the pack's own)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead."),
    model: str | None = typer.Option(
        None, "--model", help="Show the text as this model ('demo' or a folder) tokenises it "
                              "(its symbols and tokenizer; CODE is then ignored)."),
    packs_dir: Path | None = PACKS_DIR_OPTION,
) -> None:
    """Print normalised text, tokens ('|' = word separator), ids and any warnings."""
    if model is not None:
        processor, source = _model_processor(model), f"the model {model}"
        pack = processor.pack
    else:
        pack = LanguagePack.load(code, packs_dir)
        processor = TextProcessor(pack, tokenizer=tokenizer, emit_warnings=False)
        source = "--tokenizer" if tokenizer else "the pack's default"
    result = processor.process(text)
    if as_json:
        typer.echo(json.dumps(
            {"language": pack.code, "tokenizer": processor.tokenizer,
             "normalized": result.normalized, "tokens": result.tokens, "ids": result.ids,
             "warnings": result.warnings},
            ensure_ascii=False,
        ))
        return
    shown = [WORD_SEPARATOR_SHOWN if t == pack.word_separator else t for t in result.tokens]
    typer.echo(f"normalized: {result.normalized}")
    typer.echo(f"tokens ({processor.tokenizer}): {' '.join(shown)}")
    typer.echo(f"ids: {' '.join(str(i) for i in result.ids)}")
    typer.echo(f"tokenizer: {processor.tokenizer} ({source}; a model may use another: "
               "--model demo shows the shipped one's)" if model is None else
               f"tokenizer: {processor.tokenizer} ({source})")
    for note in result.warnings:
        typer.echo(f"warning: {note}", err=True)


def _model_processor(model: str) -> TextProcessor:
    """The text front end of a model folder, from its config.json alone (no weights read)."""
    from adavoice.config import read_json
    from adavoice.errors import ModelFormatError
    from adavoice.models.base_model import resolve_model_dir

    path = resolve_model_dir(model) / "config.json"
    symbols = read_json(path, "model config")
    if not isinstance(symbols, dict) or not isinstance(symbols.get("symbols"), dict):
        raise ModelFormatError("the model config has no symbol table", path=path)
    processor = TextProcessor.from_symbols(SymbolTable.from_dict(symbols["symbols"]))
    processor.emit_warnings = False
    return processor
