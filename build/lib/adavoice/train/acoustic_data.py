"""Acoustic-model training data: manifest rows -> token ids + cached features -> padded batches.

Padding never reaches a loss: every batch carries ``text_mask`` and ``frame_mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adavoice.data.manifest import Manifest
from adavoice.nn.alignment import beta_binomial_prior

ENERGY_FLOOR = 1e-4


def interpolated_log_f0(f0_hz: np.ndarray) -> np.ndarray:
    """ln F0 with unvoiced frames (0 Hz) filled by linear interpolation between voiced ones."""
    voiced = f0_hz > 0
    if not voiced.any():
        return np.full_like(f0_hz, np.log(100.0), dtype=np.float32)
    idx = np.arange(len(f0_hz))
    log_f0 = np.interp(idx, idx[voiced], np.log(f0_hz[voiced]))
    return log_f0.astype(np.float32)


@dataclass
class AcousticItem:
    ids: np.ndarray  # (N,) int64
    speaker: int
    mel: np.ndarray  # (n_mels, T) float32
    log_f0: np.ndarray  # (T,)
    log_energy: np.ndarray  # (T,)
    utterance_id: str


class AcousticDataset(torch.utils.data.Dataset):
    """Rows of a manifest with text; features come from a FeatureCache (computed once).

    ``speakers`` fixes the speaker-id order (a model's speaker table); rows of other speakers
    are skipped.
    """

    def __init__(self, manifest: Manifest, processor, cache, speakers: list[str]):
        self.manifest = manifest
        self.processor = processor
        self.cache = cache
        self.speaker_index = {name: i for i, name in enumerate(speakers)}
        self.rows = [u for u in manifest if u.text and u.speaker in self.speaker_index]
        processed = processor.process_many([u.text for u in self.rows]) if self.rows else []
        self._ids = [np.asarray(p.ids, dtype=np.int64) for p in processed]

    def __len__(self) -> int:
        return len(self.rows)

    def frame_lengths(self, hop_length: int, sample_rate_hz: int) -> list[int]:
        return [int(u.duration_s * sample_rate_hz) // hop_length + 1 for u in self.rows]

    def __getitem__(self, index: int) -> AcousticItem:
        row = self.rows[index]
        feats = self.cache.get(self.manifest.audio_path(row))
        return AcousticItem(
            ids=self._ids[index], speaker=self.speaker_index[row.speaker],
            mel=feats.mel, log_f0=interpolated_log_f0(feats.f0_hz),
            log_energy=np.log(np.maximum(feats.energy, ENERGY_FLOOR)).astype(np.float32),
            utterance_id=row.id,
        )


@dataclass
class AcousticBatch:
    tokens: torch.Tensor  # (B, N)
    text_mask: torch.Tensor  # (B, N) bool
    speakers: torch.Tensor  # (B,)
    mel: torch.Tensor  # (B, n_mels, T)
    frame_mask: torch.Tensor  # (B, T) bool
    log_f0: torch.Tensor  # (B, T)
    log_energy: torch.Tensor  # (B, T)
    log_prior: torch.Tensor  # (B, T, N)

    def to(self, device) -> "AcousticBatch":
        return AcousticBatch(**{k: v.to(device) for k, v in self.__dict__.items()})


def collate_acoustic(items: list[AcousticItem], mel_floor: float = float(np.log(1e-5))
                     ) -> AcousticBatch:
    n_max = max(len(it.ids) for it in items)
    t_max = max(it.mel.shape[1] for it in items)
    n_mels = items[0].mel.shape[0]
    batch = len(items)
    tokens = torch.zeros(batch, n_max, dtype=torch.long)
    mel = torch.full((batch, n_mels, t_max), mel_floor)
    log_f0 = torch.zeros(batch, t_max)
    log_energy = torch.zeros(batch, t_max)
    log_prior = torch.zeros(batch, t_max, n_max)
    text_len = torch.zeros(batch, dtype=torch.long)
    frame_len = torch.zeros(batch, dtype=torch.long)
    for b, it in enumerate(items):
        n, t = len(it.ids), it.mel.shape[1]
        tokens[b, :n] = torch.from_numpy(it.ids)
        mel[b, :, :t] = torch.from_numpy(it.mel)
        log_f0[b, :t] = torch.from_numpy(it.log_f0[:t])
        log_energy[b, :t] = torch.from_numpy(it.log_energy[:t])
        log_prior[b, :t, :n] = torch.log(beta_binomial_prior(t, n).clamp(min=1e-8))
        text_len[b], frame_len[b] = n, t
    text_mask = torch.arange(n_max).unsqueeze(0) < text_len.unsqueeze(1)
    frame_mask = torch.arange(t_max).unsqueeze(0) < frame_len.unsqueeze(1)
    speakers = torch.tensor([it.speaker for it in items], dtype=torch.long)
    return AcousticBatch(tokens, text_mask, speakers, mel, frame_mask, log_f0, log_energy,
                         log_prior)


def corpus_statistics(dataset: AcousticDataset, max_items: int = 400) -> dict[str, list[float]]:
    """Mean/std of voiced ln-F0, of ln-energy and of the log-mel values (every bin of every
    frame) over (up to) ``max_items`` utterances."""
    step = max(1, len(dataset) // max_items)
    log_f0, log_energy, mel_sum, mel_sq, mel_n = [], [], 0.0, 0.0, 0
    for index in range(0, len(dataset), step):
        row = dataset.rows[index]
        feats = dataset.cache.get(dataset.manifest.audio_path(row))
        voiced = feats.f0_hz[feats.f0_hz > 0]
        log_f0.append(np.log(voiced))
        log_energy.append(np.log(np.maximum(feats.energy, ENERGY_FLOOR)))
        mel = feats.mel.astype(np.float64)
        mel_sum, mel_sq, mel_n = mel_sum + mel.sum(), mel_sq + (mel * mel).sum(), mel_n + mel.size
    f0 = np.concatenate(log_f0) if log_f0 else np.array([5.0])
    en = np.concatenate(log_energy)
    mel_mean = mel_sum / max(mel_n, 1)
    mel_std = float(np.sqrt(max(mel_sq / max(mel_n, 1) - mel_mean ** 2, 0.0)))
    return {"pitch": [float(f0.mean()), float(max(f0.std(), 1e-3))],
            "energy": [float(en.mean()), float(max(en.std(), 1e-3))],
            "mel": [float(mel_mean), max(mel_std, 1e-3)]}
