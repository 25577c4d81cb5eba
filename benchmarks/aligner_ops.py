"""Aligner variants that only ``aligner_probe.py`` uses (kept out of the package): the
forward-sum loss and MAS on which word separators may take no frame, and a per-token spread
for the attention. Measured there and not adopted (BENCHMARKS.md, aligner sections).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import nn

from adavoice.nn.alignment import _mas


def add_token_scale(aligner, text_dim: int) -> None:
    """Give each token of ``aligner`` (an AlignmentEncoder) its own spread: the logits become a
    Gaussian log-likelihood with variance ``exp(2 l) / (2 temperature)`` per token, ``l`` read
    from the token context. Starts at ``l = 0``: the attention is unchanged until it trains."""
    aligner.log_scale = nn.Conv1d(text_dim, 1, 3, padding=1)
    nn.init.zeros_(aligner.log_scale.weight)
    nn.init.zeros_(aligner.log_scale.bias)
    plain = aligner.temperature

    def scaled_forward(mel, text, text_mask, log_prior=None):
        keys = aligner.key(text.transpose(1, 2))
        queries = aligner.query((mel - aligner.mel_center) / aligner.mel_scale)
        logits = -plain * (queries.unsqueeze(-1) - keys.unsqueeze(2)).pow(2).sum(1)
        log_scale = aligner.log_scale(text.transpose(1, 2))  # (B, 1, N)
        logits = logits * torch.exp(-2 * log_scale) - keys.shape[1] * log_scale
        logits = logits.masked_fill(~text_mask.unsqueeze(1), -1e4)
        log_attention = torch.log_softmax(logits, dim=-1)
        if log_prior is not None:
            log_attention = torch.log_softmax(log_attention + log_prior, dim=-1)
        return log_attention.masked_fill(~text_mask.unsqueeze(1), -1e4)

    aligner.forward = scaled_forward


def forward_sum_loss_skippable(log_attention: torch.Tensor, text_lengths: torch.Tensor,
                               frame_lengths: torch.Tensor, skippable: torch.Tensor
                               ) -> torch.Tensor:
    """Forward-sum loss over monotonic paths on which a ``skippable`` token ((B, N) bool, e.g. a
    word separator) may take no frame; every other token takes at least one, and each frame
    belongs to one token (no blank). The first and last tokens are never skipped, nor are two
    neighbours both skipped (a path jumps over one token at a time; separators never touch).

    log_attention: (B, T, N) from AlignmentEncoder. Returns the mean over items of
    -log(sum over paths of the product of attention) / frames. An item with no path (too few
    frames) counts zero, as ``zero_infinity`` does in :func:`forward_sum_loss`.
    """
    batch, t_max, n_max = log_attention.shape
    t_max = min(t_max, int(frame_lengths.max()))
    none = -1e9
    # entering token j from j-2 skips j-1: allowed when j-1 is skippable and not the first
    can_skip = torch.zeros(batch, n_max, dtype=torch.bool, device=log_attention.device)
    can_skip[:, 2:] = skippable[:, 1:-1]
    alpha = nn.functional.pad(log_attention[:, 0, :1], (0, n_max - 1), value=none)
    history = [alpha]
    for t in range(1, t_max):
        move = nn.functional.pad(alpha, (1, 0), value=none)[:, :n_max]
        skip = nn.functional.pad(alpha, (2, 0), value=none)[:, :n_max].masked_fill(~can_skip,
                                                                                   none)
        alpha = torch.logsumexp(torch.stack([alpha, move, skip]), 0) + log_attention[:, t]
        history.append(alpha)
    alphas = torch.stack(history, 1)  # (B, T, N)
    frames = frame_lengths.clamp(min=1, max=t_max).long() - 1
    ends = alphas[torch.arange(batch), frames, text_lengths.long() - 1]
    losses = -ends / (frames + 1).to(ends.dtype)
    return torch.where(ends > none / 2, losses, torch.zeros_like(losses)).mean()


@numba.njit(cache=True)
def _mas_skippable(log_probs: np.ndarray, skippable: np.ndarray) -> np.ndarray:
    """:func:`_mas` where token j may take no frame when ``skippable[j]`` (never the first or
    last token, nor two neighbours). Returns the (T, N) 0/1 path, a skipped token's column all
    zero; all zero when no path exists."""
    n_frames, n_tokens = log_probs.shape
    score = np.full((n_frames, n_tokens), -np.inf)
    came = np.zeros((n_frames, n_tokens), dtype=np.int64)  # 0 stay, 1 move, 2 skip
    score[0, 0] = log_probs[0, 0]
    for t in range(1, n_frames):
        for j in range(n_tokens):
            best, how = score[t - 1, j], 0
            if j > 0 and score[t - 1, j - 1] >= best:
                best, how = score[t - 1, j - 1], 1
            if j > 1 and skippable[j - 1] and score[t - 1, j - 2] > best:
                best, how = score[t - 1, j - 2], 2
            score[t, j] = best + log_probs[t, j]
            came[t, j] = how
    path = np.zeros((n_frames, n_tokens), dtype=np.float32)
    if score[n_frames - 1, n_tokens - 1] == -np.inf:
        return path
    j = n_tokens - 1
    for t in range(n_frames - 1, -1, -1):
        path[t, j] = 1.0
        if t > 0:
            j -= came[t, j]
    return path


def monotonic_alignment_search_skippable(log_attention, text_lengths, frame_lengths,
                                         skippable):
    """Hard monotonic alignment (B, T, N) where tokens marked in ``skippable`` (B, N) bool may
    take no frame (see :func:`forward_sum_loss_skippable` for which)."""
    values = log_attention.detach().float().cpu().numpy()
    hard = np.zeros_like(values, dtype=np.float32)
    skip = skippable.detach().cpu().numpy()
    for b in range(values.shape[0]):
        n, t = int(text_lengths[b]), int(frame_lengths[b])
        path = None
        if n > 0 and t >= n - int(skip[b, 1:n - 1].sum()):
            path = _mas_skippable(values[b, :t, :n].astype(np.float64),
                                  skip[b, :n].astype(np.bool_))
            path = path if path.any() else None  # no path with skips: as if none were allowed
        if path is not None:
            hard[b, :t, :n] = path
        elif t >= n:
            hard[b, :t, :n] = _mas(values[b, :t, :n].astype(np.float64))
        else:
            hard[b, np.arange(t), np.arange(t)] = 1.0
    return torch.from_numpy(hard).to(log_attention.device)
