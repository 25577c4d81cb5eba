"""Losses of the acoustic model; every one is masked so padding never contributes.

>>> mask = torch.tensor([[True, False]])
>>> float(masked_l1(torch.tensor([[[1.0, 100.0]]]), torch.zeros(1, 1, 2), mask))
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from adavoice.nn.alignment import binarization_loss, forward_sum_loss
from adavoice.train.settings import BASE_RUN


@dataclass(frozen=True)
class LossWeights:
    mel: float = 1.0
    duration: float = 0.1
    pitch: float = 0.1
    energy: float = 0.1
    phoneme_condition: float = 0.1
    forward_sum: float = 1.0
    binarization: float = 1.0
    # binarising before the soft attention has learned locks a poor alignment in
    binarization_start_step: int = BASE_RUN.binarize_from


def masked_l1(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """pred/target (B, C, T); mean absolute error over real frames only."""
    keep = frame_mask.unsqueeze(1).to(pred.dtype)
    return ((pred - target).abs() * keep).sum() / (keep.sum() * pred.shape[1]).clamp(min=1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """pred/target (B, N) or (B, N, C); mean squared error over real tokens only."""
    keep = mask.to(pred.dtype)
    if pred.dim() == 3:
        keep = keep.unsqueeze(-1).expand_as(pred)
    return ((pred - target).pow(2) * keep).sum() / keep.sum().clamp(min=1)


def acoustic_losses(out, batch, step: int, weights: LossWeights = LossWeights()
                    ) -> dict[str, torch.Tensor]:
    """All losses of a teacher-forced AcousticModel pass; ``loss`` is their weighted sum."""
    text_mask, frame_mask = batch.text_mask, batch.frame_mask
    mel = masked_l1(out.mel, batch.mel, frame_mask)
    duration_target = torch.log(out.durations.float() + 1.0)
    duration = masked_mse(out.log_duration, duration_target, text_mask)
    pitch = masked_mse(out.pitch, out.pitch_target, text_mask)
    energy = masked_mse(out.energy, out.energy_target, text_mask)
    phoneme = masked_mse(out.phoneme_condition, out.phoneme_condition_target.detach(), text_mask)
    if out.log_attention is None:  # durations were given: no aligner ran
        fsum = binar = mel.new_zeros(())
    else:
        fsum = forward_sum_loss(out.log_attention, text_mask.sum(1), frame_mask.sum(1))
        binar = binarization_loss(out.hard_attention, out.log_attention)
    binar_weight = weights.binarization if step >= weights.binarization_start_step else 0.0
    total = (weights.mel * mel + weights.duration * duration + weights.pitch * pitch
             + weights.energy * energy + weights.phoneme_condition * phoneme
             + weights.forward_sum * fsum + binar_weight * binar)
    return {"loss": total, "mel_loss": mel, "duration_loss": duration, "pitch_loss": pitch,
            "energy_loss": energy, "phoneme_loss": phoneme, "forward_sum_loss": fsum,
            "binarization_loss": binar}
