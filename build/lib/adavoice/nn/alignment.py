"""Learned text-to-mel alignment ("one TTS alignment to rule them all", as used by FastPitch and
JETS): soft attention by distance, forward-sum (CTC) loss, monotonic alignment search (MAS) for
hard durations, and the binarisation loss. Works on any token set (graphemes of any language).

>>> aligner = AlignmentEncoder(n_mels=80, text_dim=16, attention_dim=8)
>>> soft = aligner(torch.randn(1, 80, 20), torch.randn(1, 5, 16),
...                torch.ones(1, 5, dtype=torch.bool), beta_binomial_prior(20, 5).log()[None])
>>> tuple(soft.shape)   # (B, T_frames, N_tokens) log-probabilities
(1, 20, 5)
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import nn


class AlignmentEncoder(nn.Module):
    """Encodes mels (queries) and token embeddings (keys); attention logits are minus a scaled
    squared distance.

    The mel is standardised first, ``(mel - mel_center) / mel_scale``. Raw log-mels (about -11 to
    +2 here) left the queries dominated by their constant offset: on the English base corpus the
    attention stayed near its prior, and hubs (stress marks, first tokens) took whole words. With
    the corpus's centre and spread and ``temperature=0.005`` it learned (BENCHMARKS.md, aligner).

    forward(mel: (B, n_mels, T), text: (B, N, text_dim), text_mask: (B, N) bool,
            log_prior: (B, T, N) | None) -> (B, T, N) log soft attention over tokens per frame.
    """

    def __init__(self, n_mels: int, text_dim: int, attention_dim: int = 80,
                 temperature: float = 0.0005, mel_center: float = 0.0, mel_scale: float = 1.0):
        super().__init__()
        self.temperature = temperature
        self.mel_center = mel_center
        self.mel_scale = mel_scale
        self.key = nn.Sequential(
            nn.Conv1d(text_dim, 2 * text_dim, 3, padding=1), nn.ReLU(),
            nn.Conv1d(2 * text_dim, attention_dim, 1),
        )
        self.query = nn.Sequential(
            nn.Conv1d(n_mels, 2 * n_mels, 3, padding=1), nn.ReLU(),
            nn.Conv1d(2 * n_mels, n_mels, 1), nn.ReLU(),
            nn.Conv1d(n_mels, attention_dim, 1),
        )

    def forward(self, mel, text, text_mask, log_prior=None):
        keys = self.key(text.transpose(1, 2))  # (B, A, N)
        queries = self.query((mel - self.mel_center) / self.mel_scale)  # (B, A, T)
        distance = (queries.unsqueeze(-1) - keys.unsqueeze(2)).pow(2).sum(1)  # (B, T, N)
        logits = -self.temperature * distance
        logits = logits.masked_fill(~text_mask.unsqueeze(1), -1e4)
        log_attention = torch.log_softmax(logits, dim=-1)
        if log_prior is not None:
            log_attention = torch.log_softmax(log_attention + log_prior, dim=-1)
        return log_attention.masked_fill(~text_mask.unsqueeze(1), -1e4)


def beta_binomial_prior(n_frames: int, n_tokens: int, scale: float = 1.0) -> torch.Tensor:
    """(T, N) prior favouring the diagonal: row t is BetaBinomial(N-1, scale*t, scale*(T-t+1))."""
    k = torch.arange(n_tokens, dtype=torch.float64)
    n = float(n_tokens - 1)
    t = torch.arange(1, n_frames + 1, dtype=torch.float64).unsqueeze(1)
    a, b = scale * t, scale * (n_frames - t + 1)
    log_pmf = (
        torch.lgamma(torch.tensor(n + 1)) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
        + torch.lgamma(k + a) + torch.lgamma(n - k + b) - torch.lgamma(n + a + b)
        - torch.lgamma(a) - torch.lgamma(b) + torch.lgamma(a + b)
    )
    return log_pmf.exp().float()


def forward_sum_loss(log_attention: torch.Tensor, text_lengths: torch.Tensor,
                     frame_lengths: torch.Tensor, blank_log_prob: float = -1.0) -> torch.Tensor:
    """CTC over all monotonic paths through the tokens (each token visited, in order).

    log_attention: (B, T, N) from AlignmentEncoder; lengths are (B,) int.
    """
    padded = nn.functional.pad(log_attention, (1, 0), value=blank_log_prob)
    losses = []
    for b in range(padded.shape[0]):
        n, t = int(text_lengths[b]), int(frame_lengths[b])
        logp = padded[b, :t, : n + 1].log_softmax(-1).unsqueeze(1)  # (T, 1, N+1)
        target = torch.arange(1, n + 1, device=padded.device).unsqueeze(0)
        losses.append(nn.functional.ctc_loss(
            logp, target, torch.tensor([t]), torch.tensor([n]), blank=0, zero_infinity=True,
            reduction="sum",
        ) / max(t, 1))
    return torch.stack(losses).mean()


@numba.njit(cache=True)
def _mas(log_probs: np.ndarray) -> np.ndarray:
    """Monotonic alignment search on one (T, N) matrix; T >= N. Returns (T, N) 0/1 path."""
    n_frames, n_tokens = log_probs.shape
    score = np.full((n_frames, n_tokens), -np.inf)
    score[0, 0] = log_probs[0, 0]
    for t in range(1, n_frames):
        for j in range(min(t + 1, n_tokens)):
            stay = score[t - 1, j]
            move = score[t - 1, j - 1] if j > 0 else -np.inf
            score[t, j] = max(stay, move) + log_probs[t, j]
    path = np.zeros((n_frames, n_tokens), dtype=np.float32)
    j = n_tokens - 1
    for t in range(n_frames - 1, -1, -1):
        path[t, j] = 1.0
        if t > 0 and j > 0 and (j == t or score[t - 1, j - 1] >= score[t - 1, j]):
            j -= 1
    return path


def monotonic_alignment_search(log_attention: torch.Tensor, text_lengths: torch.Tensor,
                               frame_lengths: torch.Tensor) -> torch.Tensor:
    """Hard monotonic alignment (B, T, N) of 0/1, every token >= 1 frame when T >= N."""
    values = log_attention.detach().float().cpu().numpy()
    hard = np.zeros_like(values, dtype=np.float32)
    for b in range(values.shape[0]):
        n, t = int(text_lengths[b]), int(frame_lengths[b])
        if t >= n:
            hard[b, :t, :n] = _mas(values[b, :t, :n].astype(np.float64))
        else:  # fewer frames than tokens: diagonal clipped, later tokens get 0 frames
            hard[b, np.arange(t), np.arange(t)] = 1.0
    return torch.from_numpy(hard).to(log_attention.device)


def binarization_loss(hard: torch.Tensor, log_attention: torch.Tensor) -> torch.Tensor:
    """Pull the soft attention towards the hard path: mean of -log soft on the path."""
    picked = log_attention.clamp(min=-1e4) * hard
    return -picked.sum() / hard.sum().clamp(min=1.0)
