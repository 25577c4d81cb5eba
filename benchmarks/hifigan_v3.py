"""A HiFi-GAN V3-sized generator (Kong et al. 2020, config V3), for speed comparisons only: the
weights are random, the architecture and sizes are the paper's (upsampling 8x8x4 with kernels
16/16/8 from 256 channels, "ResBlock2" with kernels 3/5/7 and dilations (1,2), (2,6), (3,12)).
"""

from __future__ import annotations

import torch
from torch import nn

LRELU_SLOPE = 0.1


class ResBlock2(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, int]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d,
                      padding=(kernel_size * d - d) // 2)
            for d in dilations)

    def forward(self, x):
        for conv in self.convs:
            x = x + conv(nn.functional.leaky_relu(x, LRELU_SLOPE))
        return x


class HiFiGANV3Generator(nn.Module):
    """mel (B, 80, T) -> wave (B, 1, T * 256)."""

    def __init__(self, n_mels: int = 80, channels: int = 256,
                 rates=(8, 8, 4), kernels=(16, 16, 8),
                 res_kernels=(3, 5, 7), res_dilations=((1, 2), (2, 6), (3, 12))):
        super().__init__()
        self.pre = nn.Conv1d(n_mels, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(rates, kernels, strict=True)):
            c_in, c_out = channels // 2 ** i, channels // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, kernel, rate,
                                               padding=(kernel - rate) // 2))
            for k, d in zip(res_kernels, res_dilations, strict=True):
                self.resblocks.append(ResBlock2(c_out, k, d))
        self.post = nn.Conv1d(channels // 2 ** len(rates), 1, 7, padding=3)
        self.kernels = len(res_kernels)

    def forward(self, mel):
        x = self.pre(mel)
        for i, up in enumerate(self.ups):
            x = up(nn.functional.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.kernels:(i + 1) * self.kernels]
            x = sum(block(x) for block in blocks) / self.kernels
        return torch.tanh(self.post(nn.functional.leaky_relu(x)))
