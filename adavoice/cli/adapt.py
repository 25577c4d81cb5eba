"""`adavoice adapt`: a thin shell over adavoice.adapt."""

from __future__ import annotations

from pathlib import Path

import typer

from adavoice.adaptation.config import (
    DEFAULT_MAX_UTTERANCES,
    KINDS,
    LORA_TARGETS,
    AdapterConfig,
)

_DEFAULTS = AdapterConfig()


def adapt_command(
    data: Path = typer.Argument(..., help="Manifest folder or plain audio folder "
                                          "(optional metadata.csv: <file stem>|<text>)"),
    out: Path = typer.Option(..., "--out", help="Voice folder to write (the adapter bundle)"),
    model: str = typer.Option("demo", "--model", help="'demo' or a base-model folder"),
    kind: str = typer.Option(_DEFAULTS.kind, help=" | ".join(KINDS)),
    untranscribed: bool = typer.Option(False, "--untranscribed",
                                       help="Ignore transcripts (AdaSpeech 2; no text is read)"),
    steps: int = typer.Option(None, help=f"Maximum steps (default: {_DEFAULTS.steps}; without "
                                         f"transcripts {_DEFAULTS.untranscribed_steps}, except "
                                         f"embedding: {_DEFAULTS.steps}); caps both modes",
                              show_default=False),
    max_utterances: int = typer.Option(DEFAULT_MAX_UTTERANCES, help="Use at most this many clips"),
    speaker: str = typer.Option(None, help="Only this speaker's rows of a manifest"),
    lora_rank: int = typer.Option(None, help=f"LoRA rank (kind lora; default "
                                             f"{_DEFAULTS.lora_rank})"),
    lora_alpha: int = typer.Option(None, help=f"LoRA alpha (kind lora; default "
                                              f"{_DEFAULTS.lora_alpha}): the update is scaled "
                                              "by alpha / rank"),
    lora_target: list[str] = typer.Option(None, "--lora-target",
                                          help="A decoder layer LoRA wraps: "
                                               f"{', '.join(LORA_TARGETS)} "
                                               "(repeatable; default all)"),
    learning_rate: float = typer.Option(None, help="Override the kind's learning rate"),
    postfilter_steps: int = typer.Option(
        None, help="Also tune the voice's own values of the base's mel post-filter for this "
                   f"many steps (default: {_DEFAULTS.postfilter_steps}, the base's values; "
                   "measured at 1000, BENCHMARKS.md 'A post-filter per voice')",
        show_default=False),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace a voice already in OUT (never a folder of "
                                        "other files)"),
) -> None:
    """Adapt the base model to a new voice from ~20 clips; writes a bundle to OUT."""
    from adavoice.adaptation.bundle import check_voice_folder
    from adavoice.api import adapt
    from adavoice.errors import ConfigError

    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError("the output folder is not empty", path=out,
                          fix="choose a new --out, or pass --overwrite to replace it")
    check_voice_folder(out)  # a file, a folder of other files, no write access: before training
    if kind != "lora" and (lora_rank is not None or lora_alpha is not None or lora_target):
        raise ConfigError(f"LoRA options do not apply to the {kind!r} kind",
                          fix="pass --kind lora, or drop the --lora-* options")
    cfg = AdapterConfig.for_kind(kind, steps=steps, lora_rank=lora_rank, lora_alpha=lora_alpha,
                                 lora_targets=tuple(lora_target) if lora_target else None,
                                 learning_rate=learning_rate,
                                 postfilter_steps=postfilter_steps)
    voice = adapt(model, data, untranscribed=untranscribed, max_utterances=max_utterances,
                  config=cfg, speaker=speaker, name=out.name)
    voice.save(out)
    prov = voice.config["provenance"]
    mode = "transcribed" if prov["transcribed"] else "untranscribed"
    typer.echo(f"{out}: {voice.kind} voice, {mode}, {prov['clips']} clips, "
               f"{prov['steps']} steps in {prov['wall_s']} s, "
               f"{voice.stored_parameters} stored parameters")
    postfilter = voice.config.get("postfilter") or {}
    if "steps" in postfilter:
        typer.echo(f"  own post-filter values: {postfilter['tuned_numbers']} numbers, "
                   f"{postfilter['steps']} steps in {postfilter['wall_s']} s")
