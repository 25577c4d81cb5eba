"""Objective evaluation (DESIGN §9): MCD, log-F0 RMSE, V/UV error, CER/WER, RTF and memory.

>>> import numpy as np
>>> a = np.zeros((5, 24)); b = np.full((5, 24), 0.1)
>>> round(mcd_from_cepstra(a, b, align=False), 3)
3.009
"""

from adavoice.evaluate.f0 import F0Comparison, compare_f0, f0_metrics, f0_track
from adavoice.evaluate.mcd import (
    AnalysisConfig,
    dtw_path,
    linear_path,
    mcd_from_cepstra,
    mel_cepstral_distortion,
    mel_cepstrum,
    trim_silence,
    warping_alpha,
)
from adavoice.evaluate.report import (
    EvalReport,
    PairResult,
    evaluate_dirs,
    load_transcripts,
    plot_mel_pair,
)
from adavoice.evaluate.text_metrics import Recognizer, cer, normalize_text, wer
from adavoice.evaluate.timing import TimingReport, measure, torch_threads

__all__ = [
    "AnalysisConfig",
    "EvalReport",
    "F0Comparison",
    "PairResult",
    "Recognizer",
    "TimingReport",
    "cer",
    "compare_f0",
    "dtw_path",
    "evaluate_dirs",
    "f0_metrics",
    "f0_track",
    "linear_path",
    "load_transcripts",
    "mcd_from_cepstra",
    "measure",
    "mel_cepstral_distortion",
    "mel_cepstrum",
    "normalize_text",
    "plot_mel_pair",
    "torch_threads",
    "trim_silence",
    "warping_alpha",
    "wer",
]
