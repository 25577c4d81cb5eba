"""`adavoice eval`: compare synthesized audio with references, a thin shell over
:func:`adavoice.evaluate.evaluate_dirs`."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

import typer

from adavoice.errors import ConfigError

DEFAULT_OUT_DIR = Path("eval_report")


def load_recognizer(spec: str) -> Any:
    """Resolve ``package.module:name`` to a recogniser; a class is instantiated without args."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"recogniser {spec!r} is not 'module:name'",
                          fix="name it like mypackage.asr:recognize")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load recogniser {spec!r} ({exc})",
                          fix="check that the module is importable and defines the name") from exc
    recognizer = target() if isinstance(target, type) else target
    if not callable(recognizer):
        raise ConfigError(f"recogniser {spec!r} is not callable",
                          fix="name a function or class taking (samples, sample_rate_hz)")
    return recognizer


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def eval_command(
    ref: Path = typer.Option(..., "--ref", help="Folder of reference audio."),
    hyp: Path = typer.Option(..., "--hyp", help="Folder of synthesized audio, same file names."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the JSON report here."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir",
        help="Where report.json, report.md and mel.png go (default: the --json file's folder, "
             "else ./eval_report).",
    ),
    transcripts: Path | None = typer.Option(
        None, "--transcripts", help="manifest.jsonl or '<stem>|<text>' lines, for CER/WER."
    ),
    recognizer: str | None = typer.Option(
        None, "--recognizer", help="module:name of a callable (samples, sample_rate_hz) -> text."
    ),
    pitch_method: str = typer.Option("yin", "--pitch-method", help="yin (fast) or pyin."),
    sample_rate: int | None = typer.Option(
        None, "--sample-rate", help="Analysis rate in Hz (default: the lower rate of each pair)."
    ),
) -> None:
    """Compare synthesized audio with references: MCD, log-F0 RMSE, V/UV error, CER/WER."""
    from adavoice.evaluate import evaluate_dirs, load_transcripts

    if pitch_method not in ("yin", "pyin"):
        raise ConfigError(f"unknown pitch method {pitch_method!r}", fix="use yin or pyin")
    texts = load_transcripts(transcripts) if transcripts is not None else None
    asr = load_recognizer(recognizer) if recognizer is not None else None
    if out_dir is None:
        out_dir = json_out.parent if json_out is not None else DEFAULT_OUT_DIR
    report = evaluate_dirs(ref, hyp, texts, asr, out_dir=out_dir, pitch_method=pitch_method,
                           sample_rate_hz=sample_rate)
    if json_out is not None:
        report.write_json(json_out)

    typer.echo(f"{'utterance':<24} {'MCD dB':>8} {'F0 cents':>9} {'V/UV':>6} {'CER':>6}")
    for pair in report.pairs:
        typer.echo(f"{pair.stem[:24]:<24} {_cell(pair.mcd_db, 2):>8} "
                   f"{_cell(pair.log_f0_rmse_cents, 1):>9} {_cell(pair.vuv_error, 3):>6} "
                   f"{_cell(pair.cer, 3):>6}")
    summary = report.summary()
    typer.echo(f"{'mean':<24} {_cell(summary['mean_mcd_db'], 2):>8} "
               f"{_cell(summary['mean_log_f0_rmse_cents'], 1):>9} "
               f"{_cell(summary['mean_vuv_error'], 3):>6} {_cell(summary['mean_cer'], 3):>6}")
    for label, stems in (("missing from hyp", report.missing_in_hyp),
                         ("missing from ref", report.missing_in_ref)):
        if stems:
            typer.echo(f"{label} ({len(stems)}): {', '.join(stems[:10])}"
                       + (" ..." if len(stems) > 10 else ""))
    typer.echo(f"report: {out_dir / 'report.md'}")
