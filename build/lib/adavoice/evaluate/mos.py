"""Predicted MOS from judges nobody here trained: DistillMOS (the ``distillmos`` wheel, weights
inside it) and DNSMOS P.835 (OVRL / SIG / BAK) with P.808 (the ``speechmos`` wheel, ONNX models
inside it). Both judge 16 kHz speech; waves are resampled here. Both packages are in the
``eval`` extra and imported only when a score is asked for.

>>> import numpy as np
>>> t = np.arange(22050) / 22050
>>> scores = predicted_mos(0.3 * np.sin(2 * np.pi * 220 * t), 22050)
>>> sorted(scores)
['distillmos', 'dnsmos_bak', 'dnsmos_ovrl', 'dnsmos_p808', 'dnsmos_sig']
>>> all(isinstance(value, float) for value in scores.values())
True
"""

from __future__ import annotations

import contextlib
import io
from functools import lru_cache

import numpy as np

from adavoice.errors import AdavoiceError

JUDGE_RATE_HZ = 16000
# DistillMOS and DNSMOS both score clips of about 10 s; shorter ones are padded by the judges,
# and a clip under half a second says little
MIN_SECONDS = 0.5


class MissingExtraError(AdavoiceError):
    default_fix = "pip install 'adavoice[eval]' (or: pip install distillmos speechmos)"


@lru_cache(maxsize=1)
def _distillmos():
    try:
        import distillmos
    except ImportError as exc:
        raise MissingExtraError("predicted MOS needs the distillmos package") from exc
    with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loaded weights from
        return distillmos.ConvTransformerSQAModel().eval()


def _dnsmos():
    try:
        from speechmos import dnsmos
    except ImportError as exc:
        raise MissingExtraError("DNSMOS needs the speechmos package") from exc
    return dnsmos


def to_judge_rate(wave: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Mono float32 at 16 kHz, at least ``MIN_SECONDS`` long (zero-padded)."""
    import librosa

    wave = np.asarray(wave, dtype=np.float32)
    if int(sample_rate_hz) != JUDGE_RATE_HZ:
        wave = librosa.resample(wave, orig_sr=int(sample_rate_hz), target_sr=JUDGE_RATE_HZ)
    minimum = int(MIN_SECONDS * JUDGE_RATE_HZ)
    if len(wave) < minimum:
        wave = np.pad(wave, (0, minimum - len(wave)))
    return wave.astype(np.float32)


def distillmos_score(wave: np.ndarray, sample_rate_hz: int) -> float:
    import torch

    model = _distillmos()
    with torch.inference_mode():
        return float(model(torch.from_numpy(to_judge_rate(wave, sample_rate_hz))[None]))


def dnsmos_scores(wave: np.ndarray, sample_rate_hz: int) -> dict[str, float]:
    """DNSMOS P.835 overall / signal / background and P.808."""
    wave = to_judge_rate(wave, sample_rate_hz)
    peak = float(np.abs(wave).max())
    if peak > 1.0:  # speechmos refuses samples outside [-1, 1]
        wave = wave / peak
    scores = _dnsmos().run(wave, JUDGE_RATE_HZ)
    return {"dnsmos_ovrl": float(scores["ovrl_mos"]), "dnsmos_sig": float(scores["sig_mos"]),
            "dnsmos_bak": float(scores["bak_mos"]), "dnsmos_p808": float(scores["p808_mos"])}


def predicted_mos(wave: np.ndarray, sample_rate_hz: int) -> dict[str, float]:
    """Every judge's score of one wave: ``distillmos`` and the four DNSMOS numbers."""
    return {"distillmos": distillmos_score(wave, sample_rate_hz),
            **dnsmos_scores(wave, sample_rate_hz)}
