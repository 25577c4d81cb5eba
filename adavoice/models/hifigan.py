"""HiFi-GAN generator (Kong et al., 2020): log-mel -> waveform through transposed-convolution
upsampling and multi-receptive-field residual blocks. adavoice's "universal" vocoder is this
network with the V1 weights its authors trained on many real speakers (see
:mod:`adavoice.models.universal`); the layer holds no weight norm (it is folded into the
weights when they are imported), so it runs as plain convolutions.

HiFi-GAN was trained on frames centred half a hop later than the ``MelFrontend``'s (its STFT
pads (n_fft - hop) / 2 and does not centre), so its output runs ``output_delay_samples`` late;
:class:`HiFiGAN` drops them, which lines the wave up with the mel's frames and gives the
``(T - 1) * hop`` samples of every other renderer here.

>>> generator = HiFiGAN(HiFiGANConfig.tiny()).eval()
>>> generator(torch.randn(1, 80, 10)).shape   # (B, (T - 1) * hop_length)
torch.Size([1, 2304])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from adavoice.artifacts import damaged, load_weights, read_artifact, write_artifact
from adavoice.config import JsonConfig, MelConfig
from adavoice.errors import ConfigError

KIND = "adavoice-hifigan"


@dataclass(frozen=True)
class HiFiGANConfig(JsonConfig):
    """Generator sizes (V1 by default) and the front end it expects."""

    n_mels: int = 80
    upsample_rates: tuple = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    # channels after conv_pre and after each upsampling; () halves upsample_initial_channel
    # at every upsampling (V1, V2). A narrower schedule makes a pruned student (prune.py).
    stage_channels: tuple = ()
    resblock_kernel_sizes: tuple = (3, 7, 11)
    resblock_dilations: tuple = (1, 3, 5)
    leaky_slope: float = 0.1
    # the last activation of the original is a bare leaky_relu: torch's default slope
    final_leaky_slope: float = 0.01
    output_delay_samples: int = 128  # half of the 256-sample hop (see the module docstring)
    sample_rate_hz: int = 22050  # of the audio the weights were trained on

    def __post_init__(self) -> None:
        self.check_field_types()
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ConfigError("upsample_rates and upsample_kernel_sizes must pair up")
        if self.stage_channels:
            counts = tuple(self.stage_channels)
            if not all(type(c) is int for c in counts):
                raise ConfigError("stage_channels must be whole numbers")
            if len(counts) != len(self.upsample_rates) + 1:
                raise ConfigError("stage_channels needs one count for conv_pre and one per "
                                  "upsampling")
            if min(counts) < 1:
                raise ConfigError("stage_channels must be positive")
            object.__setattr__(self, "stage_channels", counts)  # a list from Python or JSON
        elif self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise ConfigError("upsample_initial_channel must halve at every upsampling")

    def to_dict(self) -> dict:
        """The fields, without an empty ``stage_channels`` (configs written before it existed
        look the same, and adavoice versions without it still read them)."""
        data = super().to_dict()
        if not data["stage_channels"]:
            del data["stage_channels"]
        return data

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)

    @property
    def channels(self) -> tuple:
        """Channels after conv_pre and after each upsampling."""
        if self.stage_channels:
            return self.stage_channels
        return tuple(self.upsample_initial_channel // 2 ** i
                     for i in range(len(self.upsample_rates) + 1))

    @classmethod
    def tiny(cls, **kw) -> "HiFiGANConfig":
        """Seconds-fast on a CPU: for tests."""
        return cls(**{"upsample_initial_channel": 32, "resblock_kernel_sizes": (3,),
                      "resblock_dilations": (1, 3), **kw})

    def fits(self, mel: MelConfig) -> bool:
        """Whether mels of ``mel`` are what this generator renders."""
        return ((self.n_mels, self.hop_length, self.sample_rate_hz)
                == (mel.n_mels, mel.hop_length, mel.sample_rate_hz))


class ResidualBlock(nn.Module):
    """Pairs of (dilated conv, plain conv) with leaky ReLUs, each pair added to its input.

    forward(x (B, C, T)) -> (B, C, T)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple, slope: float):
        super().__init__()
        self.slope = slope
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1)
                      // 2) for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2)
            for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, self.slope)), self.slope))
        return x


class HiFiGAN(nn.Module):
    """forward(mel (B, n_mels, T) natural-log mel) -> wave (B, (T - 1) * hop_length) in
    [-1, 1] (tanh output), aligned with the mel's frames."""

    def __init__(self, cfg: HiFiGANConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.channels
        self.conv_pre = nn.Conv1d(cfg.n_mels, widths[0], 7, padding=3)
        self.ups, self.resblocks = nn.ModuleList(), nn.ModuleList()
        for stage, (rate, kernel) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes,
                                                   strict=True)):
            channels = widths[stage + 1]
            self.ups.append(nn.ConvTranspose1d(widths[stage], channels, kernel, rate,
                                               padding=(kernel - rate) // 2))
            for size in cfg.resblock_kernel_sizes:
                self.resblocks.append(ResidualBlock(channels, size, tuple(cfg.resblock_dilations),
                                                    cfg.leaky_slope))
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        per_stage = len(self.cfg.resblock_kernel_sizes)
        for stage, upsample in enumerate(self.ups):
            x = upsample(F.leaky_relu(x, self.cfg.leaky_slope))
            blocks = self.resblocks[stage * per_stage:(stage + 1) * per_stage]
            x = sum(block(x) for block in blocks) / per_stage
        wave = torch.tanh(self.conv_post(F.leaky_relu(x, self.cfg.final_leaky_slope)))[:, 0]
        start = self.cfg.output_delay_samples
        return wave[:, start:start + (mel.shape[-1] - 1) * self.cfg.hop_length]

    # ---- I/O ----------------------------------------------------------------------------------
    def save(self, folder: str | Path, provenance: dict, half: bool = False) -> Path:
        return write_artifact(folder, KIND, {"generator": self.cfg.to_dict(),
                                             "provenance": provenance},
                              self.state_dict(), half)

    @classmethod
    def from_dir(cls, folder: str | Path) -> "HiFiGAN":
        config, state = read_artifact(folder, KIND, "HiFi-GAN vocoder")
        with damaged(folder, "HiFi-GAN vocoder"):
            model = cls(HiFiGANConfig.from_dict(config["generator"]))
        return load_weights(model, state, folder)


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict saved with ``weight_norm(dim=0)`` (``<name>.weight_g`` / ``.weight_v``)
    as plain weights: ``weight = g * v / ||v||``, the norm over every dimension but the first.

    >>> v = torch.tensor([[[3.0, 4.0]]])
    >>> fold_weight_norm({"c.weight_g": torch.tensor([[[10.0]]]), "c.weight_v": v})["c.weight"]
    tensor([[[6., 8.]]])
    """
    folded = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            name = key[: -len(".weight_v")]
            norm = value.norm(dim=tuple(range(1, value.dim())), keepdim=True)
            folded[name + ".weight"] = state[name + ".weight_g"] * value / norm
        else:
            folded[key] = value
    return folded
