"""Griffin-Lim: the no-training fallback vocoder (log-mel -> waveform).

>>> import torch
>>> from adavoice.config import MelConfig
>>> gl = GriffinLim(MelConfig(), iterations=2)
>>> gl(torch.zeros(80, 10)).shape   # (T_samples,)
torch.Size([2304])
>>> gl(torch.zeros(80, 1)).shape    # too short for an STFT: padded with silence
torch.Size([1024])
"""

from __future__ import annotations

import numpy as np
import torch

from adavoice.audio import mel_filterbank
from adavoice.config import MelConfig


class GriffinLim(torch.nn.Module):
    """Inverts the mel filterbank with its pseudo-inverse (clamped at 0), then runs
    ``iterations`` of Griffin-Lim phase recovery (torchaudio) with momentum 0.99.

    forward(mel: (n_mels, T) or (B, n_mels, T) natural-log mel) -> (T_samples,) or (B, T_samples).
    """

    def __init__(self, cfg: MelConfig, iterations: int = 32, power: float = 1.2):
        super().__init__()
        self.cfg = cfg
        self.iterations = iterations
        self.power = power  # sharpening the magnitude before phase recovery reduces phasiness
        basis = mel_filterbank(cfg)
        self.register_buffer("inverse_basis", torch.from_numpy(np.linalg.pinv(basis)),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)

    def magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """Linear STFT magnitude (..., n_fft // 2 + 1, T) from the mel's pseudo-inverse."""
        return torch.clamp(torch.matmul(self.inverse_basis, torch.exp(mel.float())), min=0)

    @torch.no_grad()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        import torchaudio.functional as AF

        # the STFT needs more than n_fft / 2 samples: pad very short mels with silence
        min_frames = self.cfg.n_fft // self.cfg.hop_length + 1
        if mel.shape[-1] < min_frames:
            floor = float(np.log(self.cfg.log_floor))
            mel = torch.nn.functional.pad(mel.float(), (0, min_frames - mel.shape[-1]),
                                          value=floor)
        magnitude = self.magnitude(mel)
        num_samples = (mel.shape[-1] - 1) * self.cfg.hop_length
        wave = AF.griffinlim(
            magnitude ** self.power, window=self.window, n_fft=self.cfg.n_fft,
            hop_length=self.cfg.hop_length, win_length=self.cfg.win_length, power=1.0,
            n_iter=self.iterations, momentum=0.99, length=num_samples, rand_init=False,
        )
        peak = wave.abs().amax(dim=-1, keepdim=True).clamp(min=1e-6)
        return wave / peak * 0.9
