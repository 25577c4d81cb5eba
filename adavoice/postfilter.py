"""A spectral post-filter for predicted log-mels.

The acoustic model's mels are smooth across frequency: the detail a log-mel has between
neighbouring bands (harmonics, sharp formants) is up to 9x smaller in synthesised mels than in
recordings of the same sentences (1.6-2.8x in the median band; BENCHMARKS.md "Sharper
mels"). :func:`sharpen_mel` scales that detail back up: ``smooth + amount * (mel - smooth)``,
where ``smooth`` is the moving average over ``width`` bands (edges repeated). ``amount`` 1
leaves the mel as it is. The spectral envelope and the loudness of every band, averaged over
its neighbours, are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from adavoice.errors import ConfigError

if TYPE_CHECKING:  # the runtime imports this module without torch
    import torch

MAX_AMOUNT = 4.0
WIDTH = 5  # bands the detail is measured against (BENCHMARKS.md "Sharper mels")


def check_sharpening(amount, width: int = WIDTH) -> None:
    """ConfigError unless ``amount`` is a number in [1, MAX_AMOUNT] and ``width`` an odd
    whole number >= 3 (what a base's config or a bundle may say, checked in one place)."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float, np.floating)):
        raise ConfigError(f"mel sharpening must be a number, not {amount!r}",
                          fix="use 1 for none, 1.25 for the measured default")
    if not 1.0 <= float(amount) <= MAX_AMOUNT:
        raise ConfigError(f"mel sharpening is {amount:g}, must be between 1 (off) and "
                          f"{MAX_AMOUNT:g}", fix="use 1 for none, 1.25 for the measured default")
    if int(width) != width or width < 3 or width % 2 == 0:
        raise ConfigError(f"mel sharpening width is {width}, must be an odd whole number >= 3")


def band_average(mel: "torch.Tensor", width: int = WIDTH) -> "torch.Tensor":
    """Each frame's moving average over ``width`` bands (edges repeated): what
    :func:`sharpen_mel` keeps. ``mel`` (n_mels, T) or (B, n_mels, T)."""
    import torch

    batch = mel if mel.dim() == 3 else mel.unsqueeze(0)
    b, n, t = batch.shape
    rows = batch.transpose(1, 2).reshape(b * t, 1, n)  # one row of bands per frame
    padded = torch.nn.functional.pad(rows, (width // 2, width // 2), mode="replicate")
    smooth = torch.nn.functional.avg_pool1d(padded, width, stride=1).reshape(b, t, n)
    smooth = smooth.transpose(1, 2)
    return smooth if mel.dim() == 3 else smooth[0]


def sharpen_mel(mel: "torch.Tensor", amount: float, width: int = WIDTH) -> "torch.Tensor":
    """``mel`` (n_mels, T) or (B, n_mels, T), its across-band detail times ``amount``."""
    check_sharpening(amount, width)
    if amount == 1.0:
        return mel
    smooth = band_average(mel, width)
    return smooth + amount * (mel - smooth)


def sharpen_mel_np(mel: np.ndarray, amount: float, width: int = WIDTH) -> np.ndarray:
    """:func:`sharpen_mel` in numpy, for the runtime without torch: ``mel`` (..., n_mels, T)."""
    check_sharpening(amount, width)
    if amount == 1.0:
        return mel
    half = width // 2
    pad = [(0, 0)] * (mel.ndim - 2) + [(half, half), (0, 0)]
    padded = np.pad(mel, pad, mode="edge")
    sums = np.cumsum(padded, axis=-2, dtype=np.float64)
    sums = np.concatenate([np.zeros_like(sums[..., :1, :]), sums], axis=-2)
    smooth = ((sums[..., width:, :] - sums[..., :-width, :]) / width).astype(mel.dtype)
    return smooth + amount * (mel - smooth)
