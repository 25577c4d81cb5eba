"""Variance adaptor parts: predictors, bucketed embeddings, the export-friendly length regulator.

>>> h = torch.randn(1, 3, 4)
>>> out = regulate_length(h, torch.tensor([[1, 0, 2]]))
>>> tuple(out.shape), torch.equal(out[0, 1], h[0, 2])
((1, 3, 4), True)
"""

from __future__ import annotations

import torch
from torch import nn


class VariancePredictor(nn.Module):
    """Two conv + ReLU + LayerNorm + dropout layers, then a linear to ``out_dim`` values per token.

    forward(x: (B, N, hidden), mask: (B, N) bool) -> (B, N) if out_dim == 1 else (B, N, out_dim);
    padded positions are 0.
    """

    def __init__(self, hidden: int, filter_size: int, kernel_size: int, dropout: float,
                 out_dim: int = 1):
        super().__init__()
        self.conv1 = nn.Conv1d(hidden, filter_size, kernel_size, padding=kernel_size // 2)
        self.norm1 = nn.LayerNorm(filter_size)
        self.conv2 = nn.Conv1d(filter_size, filter_size, kernel_size, padding=kernel_size // 2)
        self.norm2 = nn.LayerNorm(filter_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(filter_size, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        y = torch.relu(self.conv1((x * keep).transpose(1, 2))).transpose(1, 2)
        y = self.dropout(self.norm1(y)) * keep
        y = torch.relu(self.conv2(y.transpose(1, 2))).transpose(1, 2)
        y = self.dropout(self.norm2(y))
        y = self.out(y) * keep
        return y.squeeze(-1) if self.out_dim == 1 else y


class BucketEmbedding(nn.Module):
    """Quantise a normalised scalar per token into ``bins`` buckets over [low, high] and embed.

    forward(values: (B, N)) -> (B, N, hidden).
    """

    def __init__(self, bins: int, hidden: int, low: float, high: float):
        super().__init__()
        self.register_buffer("boundaries", torch.linspace(low, high, bins - 1), persistent=False)
        self.embedding = nn.Embedding(bins, hidden)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        # torch.bucketize's index (boundaries strictly below the value), as a comparison and a
        # sum: the same numbers, and an ONNX form (ONNX has no bucketize)
        index = (values.unsqueeze(-1) > self.boundaries).sum(-1)
        return self.embedding(index)


def regulate_length(hidden: torch.Tensor, durations: torch.Tensor,
                    max_frames: int | None = None) -> torch.Tensor:
    """Repeat token vectors by their durations with a cumsum mask and a matmul (exports to ONNX).

    hidden: (B, N, H); durations: (B, N) integer frames (0 allowed) -> (B, T, H),
    T = max total duration (or ``max_frames``); frames past a sequence's total are zero.
    """
    durations = durations.long()
    ends = torch.cumsum(durations, dim=1)  # (B, N)
    starts = ends - durations
    total = max_frames if max_frames is not None else ends[:, -1].max()
    frame = torch.arange(total, device=hidden.device).view(1, -1, 1)  # (1, T, 1)
    assign = (frame >= starts.unsqueeze(1)) & (frame < ends.unsqueeze(1))  # (B, T, N)
    return torch.matmul(assign.to(hidden.dtype), hidden)


def token_average(frames: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    """Average frame features within each token's frames (inverse of regulate_length).

    frames: (B, T, C); durations: (B, N) -> (B, N, C); tokens with 0 frames give 0.
    """
    durations = durations.long()
    ends = torch.cumsum(durations, dim=1)
    starts = ends - durations
    frame = torch.arange(frames.shape[1], device=frames.device).view(1, 1, -1)  # (1, 1, T)
    assign = ((frame >= starts.unsqueeze(2)) & (frame < ends.unsqueeze(2))).to(frames.dtype)
    sums = torch.matmul(assign, frames)
    return sums / durations.clamp(min=1).unsqueeze(-1).to(frames.dtype)
