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


@app.command("new")
def new_command(
    code: str = typer.Argument(..., help="Code of the new language (e.g. 'sk')."),
    text: Path = typer.Option(..., "--text", help="UTF-8 text of the language, a sentence a "
                                                  "line; its letters become the alphabet."),
    name: str | None = typer.Option(None, "--name", help="Display name (default: the code)."),
    espeak: str | None = typer.Option(
        None, "--espeak", help="espeak-ng voice for phonemes (default: the code, when espeak-ng "
                               "knows it; '' for none: graphemes)"),
    tokenizer: str | None = typer.Option(None, "--tokenizer",
                                         help="graphemes | phonemes (default: phonemes when "
                                              "espeak-ng knows the language)"),
    min_count: int = typer.Option(2, "--min-count", help="Letters seen fewer times than this "
                                                         "(stray foreign names) are left out."),
    packs_dir: Path | None = PACKS_DIR_OPTION,
    force: bool = typer.Option(False, "--force", help="Replace an existing pack."),
) -> None:
    """Make a language pack from the language's own text (adavoice.bootstrap.pack)."""
    from adavoice.bootstrap.data import read_text
    from adavoice.bootstrap.pack import new_pack, write_pack
    from adavoice.errors import ConfigError
    from adavoice.text.pack import PACK_FILE, default_packs_dir

    root = packs_dir or default_packs_dir()
    if (root / code / PACK_FILE).is_file() and not force:
        raise ConfigError(f"a pack {code!r} exists already", path=root / code / PACK_FILE,
                          fix="pass --force to replace it, or --packs-dir for another folder")
    pack = new_pack(code, read_text(text), name=name, espeak_voice=espeak, tokenizer=tokenizer,
                    min_count=min_count)
    path = write_pack(pack, root)
    typer.echo(f"wrote {path}: {len(pack.alphabet)} letters, {len(pack.phonemes)} phonemes, "
               f"tokenizer {pack.tokenizer}, espeak {pack.espeak_voice or '-'}")


@app.command("bootstrap")
def bootstrap_command(
    language: str = typer.Argument(..., help="Language code; without an installed pack one is "
                                             "made from --unpaired-text."),
    paired: Path = typer.Option(..., "--paired", help="The target voice's transcribed speech "
                                                      "(manifest folder or audio + "
                                                      "metadata.csv); its valid split is held "
                                                      "out for the report."),
    unpaired_speech: Path = typer.Option(..., "--unpaired-speech",
                                         help="Untranscribed speech: a manifest folder or "
                                              "folders of audio (one speaker a folder)."),
    unpaired_text: Path = typer.Option(..., "--unpaired-text", help="Text, a sentence a line."),
    out: Path = typer.Option(..., "--out", help="The new base model folder (ASR in asr/); "
                                                "work/ inside keeps the stages for resuming."),
    low_quality: Path | None = typer.Option(None, "--low-quality-paired",
                                            help="Extra multi-speaker transcribed speech."),
    init: str = typer.Option("demo", "--init", help="The rich-language base to start from "
                                                    "(its asr/ starts the recogniser)."),
    rounds: int = typer.Option(None, "--rounds", help="Dual-transformation rounds."),
    judge: Path | None = typer.Option(None, "--judge", help="A frozen ASR that judges the TTS "
                                                            "(default: the fine-tuned one)."),
    evaluation: list[Path] = typer.Option([], "--eval", help="Held-out transcribed speech to "
                                                             "report ASR CER on (repeatable)."),
    pseudo_labels: str | None = typer.Option(
        None, "--pseudo-labels", help="beam (default: beam search with the n-gram of the "
                                      "unpaired text) | greedy: how the ASR labels unpaired "
                                      "speech."),
    distill_renderer: str | None = typer.Option(
        None, "--distill-renderer", help="griffin-lim (default) | universal: what renders the "
                                         "teacher's mels into the student's audio."),
    release: str | None = typer.Option(
        None, "--release", help="select (default: the stage whose TTS the fine-tune ASR reads "
                                "best on held-back text) | last: which stage's TTS the model "
                                "folder gets; its ASR is the last stage's."),
    postfilter_steps: int | None = typer.Option(
        None, "--postfilter-steps", help="Steps of the released TTS's mel post-filter "
                                         "(default 2000; 0: none)."),
    preset: str = typer.Option("default", "--preset", help="default | tiny (a smoke test)"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines."),
) -> None:
    """LRSpeech: TTS + ASR for a new language (fine-tune, dual transformation, distillation).

    Run the same command again to continue a stopped run; report.md says what each stage did."""
    import dataclasses

    from adavoice.bootstrap import BootstrapConfig, bootstrap
    from adavoice.errors import ConfigError

    if preset not in ("default", "tiny"):
        raise ConfigError(f"unknown bootstrap preset {preset!r}", fix="default | tiny")
    config = BootstrapConfig() if preset == "default" else BootstrapConfig.tiny()
    if rounds is not None:
        if rounds < 0:
            raise ConfigError("--rounds must be 0 or more")
        config = dataclasses.replace(config, rounds=rounds)
    if pseudo_labels is not None:
        config = dataclasses.replace(config, pseudo_label_decoder=pseudo_labels)
    if distill_renderer is not None:
        config = dataclasses.replace(config, distill_renderer=distill_renderer)
    if release is not None:
        config = dataclasses.replace(config, release_tts=release)
    if postfilter_steps is not None:
        config = dataclasses.replace(config, postfilter_steps=postfilter_steps)
    result = bootstrap(language, out, paired, unpaired_speech, unpaired_text,
                       init=init, low_quality=low_quality, evaluation=list(evaluation),
                       judge=judge, config=config, progress=not quiet, device=device)
    typer.echo(f"wrote {result} (report: {result / 'report.md'})")
