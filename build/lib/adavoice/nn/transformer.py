"""Feed-forward Transformer (FFT) blocks of FastSpeech: self-attention + 1-D conv FFN.

>>> block = FFTBlock(hidden=16, heads=2, ffn_hidden=32, kernel_size=3, dropout=0.0)
>>> x, mask = torch.randn(2, 7, 16), torch.ones(2, 7, dtype=torch.bool)
>>> tuple(block(x, mask).shape)
(2, 7, 16)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from adavoice.nn.cln import ConditionalLayerNorm


def sinusoid_positions(length: int, hidden: int, device=None) -> torch.Tensor:
    """(length, hidden) sinusoidal position encoding."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(
        torch.arange(0, hidden, 2, device=device, dtype=torch.float32)
        * (-math.log(10000.0) / hidden)
    )
    table = torch.zeros(length, hidden, device=device)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: hidden // 2])
    return table


INFERENCE_PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def fast_bfloat16_cpu() -> bool:
    """Whether this CPU has AMX tiles, which run bfloat16 matrix products several times faster
    than float32 (without them bfloat16 is emulated or barely faster: not used)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private; absent: assume not
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def resolve_inference_dtype(precision: str) -> torch.dtype:
    """``"float32" | "bfloat16" | "auto"`` -> a dtype (ConfigError otherwise)."""
    if precision == "auto":
        return torch.bfloat16 if fast_bfloat16_cpu() else torch.float32
    if precision not in INFERENCE_PRECISIONS:
        from adavoice.errors import ConfigError

        raise ConfigError(f"unknown inference precision {precision!r}",
                          fix="use one of: auto, " + ", ".join(INFERENCE_PRECISIONS))
    return INFERENCE_PRECISIONS[precision]


class FFTBlock(nn.Module):
    """Post-norm FFT block. With ``condition_dim`` set, both norms are conditional (AdaSpeech).

    forward(x: (B, T, hidden), mask: (B, T) bool, True on real positions,
            condition: (B, condition_dim) | None, norm_params: list of 2 (scale, bias) | None)
    Padding positions are zeroed on output so they never leak into later layers.
    """

    def __init__(
        self,
        hidden: int,
        heads: int,
        ffn_hidden: int,
        kernel_size: int,
        dropout: float,
        attention_dropout: float = 0.0,
        condition_dim: int | None = None,
    ):
        super().__init__()
        self.attention = nn.MultiheadAttention(
            hidden, heads, dropout=attention_dropout, batch_first=True
        )
        self.conv1 = nn.Conv1d(hidden, ffn_hidden, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv1d(ffn_hidden, hidden, 1)
        self.dropout = nn.Dropout(dropout)
        # set by ``set_inference_dtype``: attention and the FFN's matrix products run in this
        # dtype at inference (bfloat16 on a CPU with AMX: ~5x faster products); None: float32
        self.inference_dtype: torch.dtype | None = None
        self.conditional = condition_dim is not None
        if self.conditional:
            self.norm1 = ConditionalLayerNorm(hidden, condition_dim)
            self.norm2 = ConditionalLayerNorm(hidden, condition_dim)
        else:
            self.norm1 = nn.LayerNorm(hidden)
            self.norm2 = nn.LayerNorm(hidden)

    def _norm(self, norm, x, condition, params):
        if not self.conditional:
            return norm(x)
        if params is not None:
            return norm(x, scale=params[0], bias=params[1])
        return norm(x, condition)

    def _unfolded_conv1(self) -> bool:
        """Inference on a plain Conv1d, outside tracing/export (which keep the conv op)."""
        return (not self.training and type(self.conv1) is nn.Conv1d
                and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())

    def _conv1_time_major(self, x):
        """conv1 on time-major x (B, T, H) as im2col and one matrix product: the same numbers,
        ~1.6x faster than Conv1d on one CPU thread (measured at T = 100-600 frames). Runs in
        x's dtype (the weights are cast to it)."""
        k = self.conv1.kernel_size[0]
        pad = k // 2
        cols = nn.functional.pad(x, (0, 0, pad, pad)).unfold(1, k, 1)  # (B, T, H, k)
        cols = cols.reshape(x.shape[0], x.shape[1], -1)  # matches the weight's (out, H, k)
        weight = self.conv1.weight.reshape(self.conv1.out_channels, -1).to(x.dtype)
        bias = None if self.conv1.bias is None else self.conv1.bias.to(x.dtype)
        return nn.functional.linear(cols, weight, bias)

    def _low_dtype(self, x) -> torch.dtype | None:
        """``inference_dtype`` when it applies: set, differs from x's, and no gradient is being
        recorded (adapting a voice through a frozen decoder keeps float32 gradients)."""
        if self.inference_dtype in (None, x.dtype) or torch.is_grad_enabled():
            return None
        return self.inference_dtype

    def _ffn_time_major(self, x):
        """The FFN (conv1, ReLU, width-1 conv2) on time-major x (B, T, H) at inference, in
        ``inference_dtype`` when set; returns x's dtype."""
        low = self._low_dtype(x)
        inner = torch.relu(self._conv1_time_major(x if low is None else x.to(low)))
        return self._conv2_time_major(inner, x.dtype).to(x.dtype)

    def _conv2_time_major(self, inner, wrapped_dtype: torch.dtype):
        """The width-1 conv2 on time-major inner (B, T, ffn_hidden) -> (B, T, hidden)."""
        if type(self.conv2) is nn.Conv1d:  # a width-1 conv is a linear map, ~2x faster as one
            bias = None if self.conv2.bias is None else self.conv2.bias.to(inner.dtype)
            return nn.functional.linear(inner, self.conv2.weight.squeeze(-1).to(inner.dtype),
                                        bias)
        # wrapped (a LoRA layer): let the wrapper run, in ``wrapped_dtype``
        return self.conv2(inner.to(wrapped_dtype).transpose(1, 2)).transpose(1, 2)

    def _attend_low(self, x, mask, padded: bool, low: torch.dtype):
        """Self-attention at inference in ``low`` (the same weights; fused SDPA kernel)."""
        attention = self.attention
        batch, time, hidden = x.shape
        heads = attention.num_heads
        qkv = nn.functional.linear(x.to(low), attention.in_proj_weight.to(low),
                                   attention.in_proj_bias.to(low))
        q, k, v = qkv.view(batch, time, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
        keys = mask[:, None, None, :] if padded else None  # True: a key that takes part
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keys)
        out = nn.functional.linear(out.transpose(1, 2).reshape(batch, time, hidden),
                                   attention.out_proj.weight.to(low),
                                   attention.out_proj.bias.to(low))
        return out.to(x.dtype)

    def forward(self, x, mask, condition=None, norm_params=None, padded: bool = True):
        """``padded=False`` promises that ``mask`` is all True: attention then runs without a
        key padding mask, which is the same result and ~2x faster on the CPU."""
        keep = mask.unsqueeze(-1).to(x.dtype)
        low = self._low_dtype(x)
        fused = self.attention.in_proj_bias is not None and self.attention._qkv_same_embed_dim
        if fused and low is not None and self._unfolded_conv1():
            attended = self._attend_low(x, mask, padded, low)
        elif fused and torch.onnx.is_in_onnx_export():
            # the exporter has no form for MultiheadAttention's fused inference kernel; the
            # same products written out export as MatMul/Softmax
            attended = self._attend_low(x, mask, padded, x.dtype)
        else:
            attended, _ = self.attention(x, x, x, key_padding_mask=~mask if padded else None,
                                         need_weights=False)
        p1 = None if norm_params is None else norm_params[0]
        p2 = None if norm_params is None else norm_params[1]
        x = self._norm(self.norm1, x + self.dropout(attended), condition, p1) * keep
        if self._unfolded_conv1():
            hidden = self._ffn_time_major(x)
        else:
            inner = torch.relu(self.conv1(x.transpose(1, 2))).transpose(1, 2)  # (B, T, ffn)
            hidden = self._conv2_time_major(inner, x.dtype)
        x = self._norm(self.norm2, x + self.dropout(hidden), condition, p2) * keep
        return x


class FFTStack(nn.Module):
    """Positional encoding + N FFT blocks. forward(x (B,T,H), mask (B,T)) -> (B,T,H)."""

    def __init__(self, layers: int, hidden: int, heads: int, ffn_hidden: int, kernel_size: int,
                 dropout: float, attention_dropout: float = 0.0, condition_dim: int | None = None):
        super().__init__()
        self.hidden = hidden
        self.blocks = nn.ModuleList(
            FFTBlock(hidden, heads, ffn_hidden, kernel_size, dropout, attention_dropout,
                     condition_dim)
            for _ in range(layers)
        )

    def conditional_norms(self) -> list[ConditionalLayerNorm]:
        return [m for m in self.modules() if isinstance(m, ConditionalLayerNorm)]

    def set_inference_dtype(self, dtype: torch.dtype | None) -> None:
        """The dtype of the blocks' attention and FFN products at inference (None: float32)."""
        for block in self.blocks:
            block.inference_dtype = dtype

    def forward(self, x, mask, condition=None, norm_params=None):
        x = x + sinusoid_positions(x.shape[1], self.hidden, x.device).unsqueeze(0).to(x.dtype)
        # at inference a single utterance has no padding; checking costs a device sync, so
        # training (padded batches anyway) and tracing (export) keep the mask
        padded = (self.training or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
                  or not bool(mask.all()))
        for index, block in enumerate(self.blocks):
            params = None if norm_params is None else norm_params[2 * index: 2 * index + 2]
            x = block(x, mask, condition, params, padded)
        return x
