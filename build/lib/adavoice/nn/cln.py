"""Conditional layer norm (AdaSpeech): scale and bias come from a speaker condition vector.

>>> cln = ConditionalLayerNorm(hidden=8, condition_dim=4)
>>> x, s = torch.randn(2, 5, 8), torch.randn(2, 4)
>>> torch.allclose(cln(x, s), torch.nn.functional.layer_norm(x, (8,)), atol=1e-6)  # starts as LN
True
"""

from __future__ import annotations

import torch
from torch import nn


class ConditionalLayerNorm(nn.Module):
    """LayerNorm without its own affine: ``scale = W_gamma s + b_gamma``,
    ``bias = W_beta s + b_beta``.

    Initialised with W = 0, b_gamma = 1, b_beta = 0 so the layer starts as plain LN.
    forward(x: (B, T, hidden), condition: (B, condition_dim)) -> (B, T, hidden).
    ``scale_bias(condition)`` gives the (scale, bias) pair a voice bundle stores; ``forward``
    also accepts them precomputed through ``scale``/``bias`` (export path: adapter tensors are
    graph inputs).
    """

    def __init__(self, hidden: int, condition_dim: int, eps: float = 1e-5):
        super().__init__()
        self.hidden = hidden
        self.eps = eps
        self.to_scale = nn.Linear(condition_dim, hidden)
        self.to_bias = nn.Linear(condition_dim, hidden)
        nn.init.zeros_(self.to_scale.weight)
        nn.init.ones_(self.to_scale.bias)
        nn.init.zeros_(self.to_bias.weight)
        nn.init.zeros_(self.to_bias.bias)

    def scale_bias(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, condition_dim) -> two (B, hidden) tensors."""
        return self.to_scale(condition), self.to_bias(condition)

    def forward(
        self,
        x: torch.Tensor,
        condition: torch.Tensor | None = None,
        scale: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if scale is None or bias is None:
            if condition is None:
                raise ValueError("ConditionalLayerNorm needs a condition or a (scale, bias) pair")
            scale, bias = self.scale_bias(condition)
        normed = nn.functional.layer_norm(x, (self.hidden,), eps=self.eps)
        return normed * scale.unsqueeze(1) + bias.unsqueeze(1)
