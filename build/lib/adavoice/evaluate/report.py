"""Compare a folder of synthesized audio with a folder of references, pair by file name.

``evaluate_dirs`` pairs files by stem (``ref/a1.wav`` with ``hyp/a1.flac``), computes per pair
MCD (dB), log-F0 RMSE (cents), V/UV error and, with transcripts and a recogniser, CER/WER of
the recogniser on the synthesized audio (and on the reference, its floor). Files without a
counterpart are listed in the report, not fatal; no pair at all is a DatasetError.
``EvalReport.write(out_dir)`` saves ``report.json``, ``report.md`` and ``mel.png``.

>>> report = EvalReport(pairs=[], missing_in_hyp=["b"], missing_in_ref=[])
>>> report.summary()["pairs"], report.missing_in_hyp
(0, ['b'])
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from adavoice.errors import DatasetError, MetadataFormatError, MissingFileError
from adavoice.evaluate.f0 import f0_metrics
from adavoice.evaluate.mcd import (
    AnalysisConfig,
    dtw_path,
    mcd_from_cepstra,
    mel_cepstrum,
    trim_silence,
)
from adavoice.evaluate.text_metrics import (
    Recognizer,
    cer,
    normalize_text,
    transcribe_and_score,
    wer,
)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
_METRICS = ("mcd_db", "log_f0_rmse_cents", "vuv_error", "cer", "wer", "ref_cer", "ref_wer")


@dataclass
class PairResult:
    """Metrics of one (reference, hypothesis) pair; None where not computed, NaN where
    undefined (no frame voiced in both)."""

    stem: str
    ref_path: str
    hyp_path: str
    sample_rate_hz: int
    ref_duration_s: float
    hyp_duration_s: float
    mcd_db: float
    log_f0_rmse_cents: float
    vuv_error: float
    voiced_pairs: int
    reference_text: str | None = None
    transcript: str | None = None
    ref_transcript: str | None = None
    cer: float | None = None
    wer: float | None = None
    ref_cer: float | None = None
    ref_wer: float | None = None


@dataclass
class EvalReport:
    """All pairs plus the stems that had no counterpart."""

    pairs: list[PairResult]
    missing_in_hyp: list[str]
    missing_in_ref: list[str]
    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    pitch_method: str = "yin"

    def summary(self) -> dict[str, Any]:
        """Means over pairs (NaN/None skipped) and CER/WER pooled over all transcribed words."""
        out: dict[str, Any] = {"pairs": len(self.pairs)}
        for name in _METRICS:
            values = [getattr(p, name) for p in self.pairs]
            values = [v for v in values if v is not None and not math.isnan(v)]
            out[f"mean_{name}"] = float(np.mean(values)) if values else None
        scored = [p for p in self.pairs if p.transcript is not None]
        if scored:
            refs = [p.reference_text or "" for p in scored]
            out["pooled_cer"] = cer(refs, [p.transcript or "" for p in scored])
            out["pooled_wer"] = wer(refs, [p.transcript or "" for p in scored])
            # the same recogniser on the reference audio: the yardstick for a WER ratio
            out["reference_pooled_cer"] = cer(refs, [p.ref_transcript or "" for p in scored])
            out["reference_pooled_wer"] = wer(refs, [p.ref_transcript or "" for p in scored])
        return out

    def to_dict(self) -> dict[str, Any]:
        return _json_safe({
            "summary": self.summary(),
            "pairs": [asdict(p) for p in self.pairs],
            "missing_in_hyp": self.missing_in_hyp,
            "missing_in_ref": self.missing_in_ref,
            "config": self.config.to_dict(),
            "pitch_method": self.pitch_method,
        })

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n", "utf-8")
        return path

    def to_markdown(self, plot_name: str | None = "mel.png") -> str:
        return _markdown(self, plot_name)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.json``, ``report.md`` and ``mel.png`` (first pair); return paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"json": self.write_json(out_dir / "report.json")}
        plot_name = None
        if self.pairs:
            paths["plot"] = plot_mel_pair(self.pairs[0], out_dir / "mel.png")
            plot_name = paths["plot"].name
        paths["markdown"] = out_dir / "report.md"
        paths["markdown"].write_text(self.to_markdown(plot_name), encoding="utf-8")
        return paths


def _json_safe(value: Any) -> Any:
    """NaN becomes null, so the JSON is strict and any reader can load it."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _markdown(report: EvalReport, plot_name: str | None) -> str:
    summary = report.summary()
    lines = ["# Evaluation report", "", f"{summary['pairs']} matched pairs; pitch by "
             f"`{report.pitch_method}`; MCD over c1..c{report.config.order}, DTW-aligned.", "",
             "| metric | mean |", "|---|---|"]
    for key, value in summary.items():
        if key != "pairs" and value is not None:  # CER/WER rows only when they were measured
            lines.append(f"| {key.removeprefix('mean_')} | {_fmt(value)} |")
    lines += ["", "| utterance | MCD (dB) | log-F0 RMSE (cents) | V/UV error | CER | WER |",
              "|---|---|---|---|---|---|"]
    for p in report.pairs:
        lines.append(f"| {p.stem} | {_fmt(p.mcd_db, 2)} | {_fmt(p.log_f0_rmse_cents, 1)} | "
                     f"{_fmt(p.vuv_error)} | {_fmt(p.cer)} | {_fmt(p.wer)} |")
    for title, stems in (("Missing from hyp", report.missing_in_hyp),
                         ("Missing from ref", report.missing_in_ref)):
        if stems:
            lines += ["", f"{title} ({len(stems)}): " + ", ".join(stems)]
    if plot_name:
        lines += ["", f"![log-mel of reference and hypothesis, {report.pairs[0].stem}]"
                      f"({plot_name})"]
    return "\n".join(lines) + "\n"


def audio_files(folder: str | Path) -> dict[str, Path]:
    """Stem -> path of the audio files directly inside ``folder`` (not recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError("audio folder not found", path=folder)
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
            if path.stem in found:
                raise DatasetError(
                    f"two audio files share the stem {path.stem!r}", path=folder,
                    fix="keep one file per utterance name",
                )
            found[path.stem] = path
    return found


def load_transcripts(path: str | Path) -> dict[str, str]:
    """Stem -> reference text from a ``manifest.jsonl`` (or its folder) or from
    ``<stem>|<text>`` lines (LJSpeech's ``id|raw|normalized`` works: the last field is used).

    Raises MissingFileError, or MetadataFormatError naming the first line without a ``|``.
    """
    from adavoice.data.manifest import MANIFEST_NAME, Manifest

    path = Path(path)
    if path.is_dir() or path.name == MANIFEST_NAME or path.suffix == ".jsonl":
        manifest = Manifest.load(path)
        texts: dict[str, str] = {}
        for utt in manifest:
            if utt.text:
                texts[utt.id] = texts[Path(utt.audio).stem] = utt.text
        return texts
    if not path.is_file():
        raise MissingFileError("transcript file not found", path=path)
    texts = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 2 or not fields[0]:
            raise MetadataFormatError(f"line {line_no} is not '<stem>|<text>'", path=path)
        texts[fields[0]] = next((f for f in reversed(fields[1:]) if f), "")
    return texts


def evaluate_pair(
    stem: str, ref_path: Path, hyp_path: Path, *, cfg: AnalysisConfig, pitch_method: str = "yin",
    sample_rate_hz: int | None = None, reference_text: str | None = None,
    recognizer: Recognizer | None = None,
) -> PairResult:
    """Metrics of one pair; ``sample_rate_hz=None`` analyses at the lower of the two files'
    rates, so band-limited audio (16 kHz engines) is not penalised for its missing band."""
    from adavoice.audio import audio_info, load_audio

    if sample_rate_hz is None:
        sample_rate_hz = min(audio_info(ref_path)[0], audio_info(hyp_path)[0])
    ref_wave = load_audio(ref_path, sample_rate_hz)
    hyp_wave = load_audio(hyp_path, sample_rate_hz)
    ref_trim = trim_silence(ref_wave, cfg.trim_top_db)
    hyp_trim = trim_silence(hyp_wave, cfg.trim_top_db)
    c_ref = mel_cepstrum(ref_trim, sample_rate_hz, cfg)
    c_hyp = mel_cepstrum(hyp_trim, sample_rate_hz, cfg)
    path = dtw_path(c_ref, c_hyp)
    # The waves are trimmed already; f0_metrics must not trim again or the path would shift.
    f0_cfg = replace(cfg, trim_top_db=None)
    pitch = f0_metrics(ref_trim, hyp_trim, sample_rate_hz, f0_cfg, pitch_method, path=path)
    result = PairResult(
        stem=stem, ref_path=str(ref_path), hyp_path=str(hyp_path),
        sample_rate_hz=int(sample_rate_hz), ref_duration_s=len(ref_wave) / sample_rate_hz,
        hyp_duration_s=len(hyp_wave) / sample_rate_hz,
        mcd_db=mcd_from_cepstra(c_ref, c_hyp, path=path),
        log_f0_rmse_cents=float(pitch["log_f0_rmse_cents"]),
        vuv_error=float(pitch["vuv_error"]), voiced_pairs=int(pitch["voiced_pairs"]),
        reference_text=reference_text,
    )
    if recognizer is not None and reference_text is not None and normalize_text(reference_text):
        hyp_scores = transcribe_and_score(recognizer, hyp_wave, sample_rate_hz, reference_text)
        ref_scores = transcribe_and_score(recognizer, ref_wave, sample_rate_hz, reference_text)
        result.transcript, result.cer, result.wer = (
            str(hyp_scores["transcript"]), float(hyp_scores["cer"]), float(hyp_scores["wer"]))
        result.ref_transcript, result.ref_cer, result.ref_wer = (
            str(ref_scores["transcript"]), float(ref_scores["cer"]), float(ref_scores["wer"]))
    return result


def evaluate_dirs(
    ref_dir: str | Path,
    hyp_dir: str | Path,
    transcripts: dict[str, str] | None = None,
    recognizer: Recognizer | None = None,
    *,
    out_dir: str | Path | None = None,
    cfg: AnalysisConfig | None = None,
    pitch_method: str = "yin",
    sample_rate_hz: int | None = None,
) -> EvalReport:
    """Evaluate every stem present in both folders; write the report when ``out_dir`` is set.

    ``transcripts`` maps stem -> reference text; CER/WER need it and a ``recognizer``.
    Raises MissingFileError for a missing folder, DatasetError when no stem matches.
    """
    cfg = cfg or AnalysisConfig()
    refs, hyps = audio_files(ref_dir), audio_files(hyp_dir)
    stems = sorted(set(refs) & set(hyps))
    if not stems:
        raise DatasetError(
            f"no audio file names match between {ref_dir} ({len(refs)} files) and {hyp_dir} "
            f"({len(hyps)} files)", fix="name each synthesized file after its reference",
        )
    transcripts = transcripts or {}
    pairs = [
        evaluate_pair(stem, refs[stem], hyps[stem], cfg=cfg, pitch_method=pitch_method,
                      sample_rate_hz=sample_rate_hz, reference_text=transcripts.get(stem),
                      recognizer=recognizer)
        for stem in stems
    ]
    report = EvalReport(
        pairs=pairs, missing_in_hyp=sorted(set(refs) - set(hyps)),
        missing_in_ref=sorted(set(hyps) - set(refs)), config=cfg, pitch_method=pitch_method,
    )
    if out_dir is not None:
        report.write(out_dir)
    return report


def plot_mel_pair(pair: PairResult, path: str | Path) -> Path:
    """Save log-mel spectrograms of a pair's reference (top) and hypothesis (bottom) as PNG.

    Uses matplotlib's Agg canvas directly, so the global pyplot backend is left alone.
    """
    import torch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from adavoice.audio import MelFrontend, load_audio
    from adavoice.config import MelConfig

    sr = pair.sample_rate_hz
    frontend = MelFrontend(MelConfig(sample_rate_hz=sr, fmax_hz=min(8000.0, sr / 2)))
    with torch.no_grad():
        mels = [frontend(torch.from_numpy(load_audio(p, sr))).numpy()
                for p in (pair.ref_path, pair.hyp_path)]
    low, high = min(m.min() for m in mels), max(m.max() for m in mels)
    figure = Figure(figsize=(10, 6), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 1)
    longest_s = max(m.shape[1] for m in mels) / frontend.cfg.frames_per_second
    for ax, mel, label in zip(axes, mels, ("reference", "hypothesis"), strict=True):
        seconds = mel.shape[1] / frontend.cfg.frames_per_second
        image = ax.imshow(mel, origin="lower", aspect="auto", vmin=low, vmax=high,
                          extent=(0.0, seconds, 0, mel.shape[0]), cmap="magma")
        ax.set_xlim(0.0, longest_s)  # one time scale for both, so durations compare by eye
        ax.set_title(f"{label}: {pair.stem} ({seconds:.2f} s)")
        ax.set_ylabel("mel band")
    axes[-1].set_xlabel("time (s)")
    figure.colorbar(image, ax=list(axes), label="log magnitude (natural log)")
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path
