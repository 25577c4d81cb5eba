"""`adavoice eval`: compare synthesized audio with references, a thin shell over
:func:`adavoice.evaluate.evaluate_dirs`."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

import typer

from adavoice.errors import ConfigError, EngineError

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
    return _CheckedRecognizer(spec, recognizer)


class _CheckedRecognizer:
    """A user's recogniser whose failures and non-text answers are typed errors, not a
    traceback or a CER computed from something that is not a transcript."""

    def __init__(self, spec: str, recognizer):
        self.spec, self.recognizer = spec, recognizer

    def __call__(self, samples, sample_rate_hz: int) -> str:
        fix = "name a function or class taking (samples, sample_rate_hz) and returning text"
        try:
            text = self.recognizer(samples, sample_rate_hz)
        except Exception as exc:  # the user's code: any error is theirs to see, in one line
            raise ConfigError(f"recogniser {self.spec!r} failed ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]})", fix=fix) from exc
        if not isinstance(text, str):
            raise ConfigError(f"recogniser {self.spec!r} returned {type(text).__name__}, "
                              "not text", fix=fix)
        return text


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
        None, "--recognizer",
        help="Recogniser for CER/WER with --transcripts: module:name of a callable "
             "(samples, sample_rate_hz) -> text. Default for English: PocketSphinx "
             "(adavoice.evaluate.sphinx, in the eval extra); other languages need one."),
    language: str = typer.Option("en", "--language",
                                 help="Language of the transcripts (picks the default "
                                      "recogniser)"),
    mos: bool = typer.Option(True, "--mos/--no-mos",
                             help="Predicted MOS of the synthesized audio (DistillMOS, DNSMOS; "
                                  "the eval extra)"),
    pitch_method: str = typer.Option("yin", "--pitch-method", help="yin (fast) or pyin."),
    sample_rate: int | None = typer.Option(
        None, "--sample-rate", help="Analysis rate in Hz (default: the lower rate of each pair)."
    ),
) -> None:
    """Compare synthesized audio with references: MCD, log-F0 RMSE, V/UV error, CER/WER."""
    from adavoice.evaluate import evaluate_dirs, load_transcripts

    if pitch_method not in ("yin", "pyin"):
        raise ConfigError(f"unknown pitch method {pitch_method!r}", fix="use yin or pyin")
    if sample_rate is not None and sample_rate <= 0:
        raise ConfigError(f"--sample-rate is {sample_rate}, must be a positive rate in Hz",
                          fix="e.g. --sample-rate 16000, or leave it out")
    texts = load_transcripts(transcripts) if transcripts is not None else None
    asr = _recognizer(recognizer, language) if texts is not None else None
    if out_dir is None:
        out_dir = json_out.parent if json_out is not None else DEFAULT_OUT_DIR
    try:
        report = evaluate_dirs(ref, hyp, texts, asr, out_dir=out_dir, pitch_method=pitch_method,
                               sample_rate_hz=sample_rate)
        if json_out is not None:
            report.write_json(json_out)
    except OSError as exc:  # a report folder under a file, a full disk, no rights
        from adavoice.errors import OutputError

        raise OutputError(f"cannot write the report ({exc.strerror or exc})",
                          path=getattr(exc, "filename", None) or out_dir) from exc

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
    if mos:
        _print_mos(hyp, [p.stem for p in report.pairs])
    typer.echo(f"report: {out_dir / 'report.md'}")


def _recognizer(spec: str | None, language: str):
    """The recogniser for CER/WER: ``spec``, else PocketSphinx for English. Without ``spec``, for
    another language or without pocketsphinx, a line says CER/WER are not computed and why
    (never a silent '-')."""
    if spec is not None:
        return load_recognizer(spec)
    if language != "en":
        typer.echo(f"note: CER/WER not computed: no built-in recogniser for {language!r} "
                   "(pass --recognizer module:name)", err=True)
        return None
    from adavoice.evaluate.sphinx import PocketSphinxRecognizer

    try:
        return PocketSphinxRecognizer()
    except EngineError as exc:  # the default, not asked for: the other metrics still run
        typer.echo(f"note: CER/WER not computed ({exc})", err=True)
        return None


def _print_mos(hyp: Path, stems: list[str]) -> None:
    """Mean predicted MOS of the synthesized files that were paired with a reference."""
    from adavoice.audio import load_audio
    from adavoice.evaluate.report import audio_files
    from adavoice.evaluate.voice_score import mean_mos

    files = audio_files(hyp)
    waves = [load_audio(files[s], 22050) for s in stems if s in files]
    if not waves:
        return
    scores = mean_mos(waves, 22050)  # None for each score when the eval extra is missing
    if scores["distillmos"] is None:
        typer.echo("note: predicted MOS not computed (pip install 'adavoice[eval]')", err=True)
        return
    typer.echo(f"predicted MOS of --hyp: DistillMOS {scores['distillmos']:.2f}, "
               f"DNSMOS OVRL {scores['dnsmos_ovrl']:.2f}")
