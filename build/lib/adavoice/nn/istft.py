"""Inverse STFT that exports to ONNX: a transposed convolution whose kernel is a fixed, windowed
inverse-DFT basis, followed by division by the window's overlap-add envelope.

It matches ``torch.istft(center=True)`` for a Hann window (same frame convention as the mel
front end: frame ``t`` is centred on sample ``t * hop_length``), but uses only ops every ONNX
runtime has (ConvTranspose, Mul, Div, Slice).

>>> istft = ConvISTFT(n_fft=64, hop_length=16)
>>> wave = torch.randn(1, 640)
>>> spec = torch.stft(wave, 64, 16, window=torch.hann_window(64), return_complex=True)
>>> rebuilt = istft(spec.abs(), torch.angle(spec))
>>> rebuilt.shape, bool(torch.allclose(rebuilt, wave[:, :rebuilt.shape[1]], atol=1e-4))
(torch.Size([1, 640]), True)
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ConvISTFT(nn.Module):
    """forward(magnitude (B, F, T), phase (B, F, T)) -> wave (B, (T - 1) * hop_length).

    F = n_fft // 2 + 1. Equivalent to torch.istft(center=True, hann window, length=(T-1)*hop).
    """

    def __init__(self, n_fft: int, hop_length: int, win_length: int | None = None):
        super().__init__()
        win_length = win_length or n_fft
        if win_length != n_fft:
            raise ValueError("ConvISTFT needs win_length == n_fft")
        self.n_fft, self.hop_length = n_fft, hop_length
        bins = n_fft // 2 + 1
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64).unsqueeze(1)
        # Hermitian symmetry: the DC and Nyquist bins count once, the others twice.
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n_fft % 2 == 0:
            weight[-1] = 1.0
        angle = 2 * math.pi * k * n / n_fft
        real_basis = weight * torch.cos(angle) / n_fft * window
        imag_basis = -weight * torch.sin(angle) / n_fft * window
        basis = torch.cat([real_basis, imag_basis]).unsqueeze(1)  # (2F, 1, n_fft)
        self.register_buffer("basis", basis.float(), persistent=False)
        self.register_buffer("window_sq", (window ** 2).float().view(1, 1, -1), persistent=False)

    def forward(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        return self.from_cartesian(magnitude * torch.cos(phase), magnitude * torch.sin(phase))

    def from_cartesian(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        """The same inverse from the spectrum's real and imaginary parts, each (B, F, T)."""
        frames = real.shape[-1]
        spectrum = torch.cat([real, imag], dim=1)
        wave = nn.functional.conv_transpose1d(spectrum, self.basis, stride=self.hop_length)
        ones = torch.ones(1, 1, frames, dtype=wave.dtype, device=wave.device)
        envelope = nn.functional.conv_transpose1d(ones, self.window_sq, stride=self.hop_length)
        start = self.n_fft // 2
        length = (frames - 1) * self.hop_length
        wave = wave[:, 0, start:start + length]
        envelope = envelope[:, 0, start:start + length]
        return wave / envelope.clamp(min=1e-8)
