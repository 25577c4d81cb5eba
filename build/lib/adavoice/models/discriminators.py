"""Discriminators for the vocoder's adversarial phase (DESIGN §5): a multi-period discriminator
(HiFi-GAN: the wave folded into ``period`` columns, 2-D convolutions along time) and a
multi-resolution discriminator (UnivNet/Vocos: 2-D convolutions over STFT magnitudes at several
resolutions), with least-squares GAN and feature-matching losses. Training-only: a vocoder
release never holds them.

Every discriminator maps a wave (B, samples) to ``(score, features)``: score (B, n) of
per-patch realness and the list of its hidden feature maps.

>>> critic = VocoderCritic.for_preset("tiny")
>>> scores, features = critic(torch.randn(2, 4096))
>>> len(scores) == len(critic.discriminators), scores[0].shape[0]
(True, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

SLOPE = 0.1  # leaky-ReLU slope of HiFi-GAN and Vocos


def _score(layers: nn.ModuleList, out: nn.Module, x: torch.Tensor):
    """A sub-discriminator's convolution stack: (per-patch scores (B, n), hidden maps)."""
    features = []
    for layer in layers:
        x = nn.functional.leaky_relu(layer(x), SLOPE)
        features.append(x)
    x = out(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's period sub-discriminator: (B, T) -> (B, T/period folded) -> Conv2d stack with
    (5, 1) kernels, stride 3 along time, so each column sees every ``period``-th sample."""

    def __init__(self, period: int, channels: tuple[int, ...]):
        super().__init__()
        self.period = period
        layers, previous = [], 1
        for i, width in enumerate(channels):
            stride = (3, 1) if i < len(channels) - 1 else (1, 1)
            layers.append(weight_norm(nn.Conv2d(previous, width, (5, 1), stride, (2, 0))))
            previous = width
        self.layers = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(previous, 1, (3, 1), 1, (1, 0)))

    def forward(self, wave: torch.Tensor):
        batch, samples = wave.shape
        extra = (-samples) % self.period
        if extra:  # reflect-pad to a whole number of periods
            wave = nn.functional.pad(wave.unsqueeze(1), (0, extra), mode="reflect").squeeze(1)
        x = wave.view(batch, 1, -1, self.period)
        return _score(self.layers, self.out, x)


class ResolutionDiscriminator(nn.Module):
    """A sub-discriminator on the log-magnitude STFT at one (n_fft, hop): Conv2d stack over
    (frequency, time), strided along frequency."""

    def __init__(self, n_fft: int, hop: int, channels: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        shapes = [((7, 5), (2, 2), (3, 2)), ((5, 3), (2, 1), (2, 1)), ((5, 3), (2, 1), (2, 1)),
                  ((3, 3), (1, 1), (1, 1))]
        layers, previous = [], 1
        for kernel, stride, padding in shapes:
            layers.append(weight_norm(nn.Conv2d(previous, channels, kernel, stride, padding)))
            previous = channels
        self.layers = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), 1, (1, 1)))

    def forward(self, wave: torch.Tensor):
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)
        x = torch.log(spec.abs().clamp(min=1e-5)).unsqueeze(1)  # (B, 1, F, frames)
        return _score(self.layers, self.out, x)


@dataclass(frozen=True)
class CriticConfig:
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    period_channels: tuple[int, ...] = (32, 64, 128, 256, 256)
    resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))
    resolution_channels: int = 32

    @classmethod
    def preset(cls, name: str) -> "CriticConfig":
        if name == "tiny":
            return cls(periods=(2, 3), period_channels=(8, 16, 16), resolutions=((512, 128),),
                       resolution_channels=8)
        if name == "small":
            return cls()
        from adavoice.errors import ConfigError

        raise ConfigError(f"unknown discriminator preset {name!r}", fix="tiny | small")


class VocoderCritic(nn.Module):
    """All sub-discriminators together: forward(wave (B, T)) -> (scores, features), one entry
    per sub-discriminator."""

    def __init__(self, cfg: CriticConfig):
        super().__init__()
        self.cfg = cfg
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(p, cfg.period_channels) for p in cfg.periods]
            + [ResolutionDiscriminator(n, h, cfg.resolution_channels)
               for n, h in cfg.resolutions])

    @classmethod
    def for_preset(cls, name: str) -> "VocoderCritic":
        return cls(CriticConfig.preset(name))

    def forward(self, wave: torch.Tensor):
        outputs = [d(wave) for d in self.discriminators]
        return [s for s, _ in outputs], [f for _, f in outputs]


def critic_loss(critic: VocoderCritic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares loss of the discriminators: real patches towards 1, generated towards 0.
    ``fake`` is detached here: this loss never reaches the generator. One forward pass over
    both halves (a DDP-wrapped critic expects one forward per backward)."""
    scores, _ = critic(torch.cat([real, fake.detach()]))
    rows = real.shape[0]
    return sum(((1 - s[:rows]) ** 2).mean() + (s[rows:] ** 2).mean() for s in scores)


def generator_terms(critic: VocoderCritic, real: torch.Tensor, fake: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
    """The generator's adversarial loss (its patches towards 1) and feature matching (L1 between
    the discriminators' hidden maps of real and generated audio, each map's mean, summed)."""
    with torch.no_grad():
        _, real_features = critic(real)
    fake_scores, fake_features = critic(fake)
    adversarial = sum(((1 - f) ** 2).mean() for f in fake_scores)
    matching = sum((r - f).abs().mean()
                   for maps_real, maps_fake in zip(real_features, fake_features, strict=True)
                   for r, f in zip(maps_real, maps_fake, strict=True))
    return {"adversarial_loss": adversarial, "feature_loss": matching}
