"""A learned post-filter for predicted log-mels, trained adversarially (a GAN post-filter).

The acoustic model regresses its mels (L1), so where a sentence could be said several ways it
predicts their average: the mels come out smooth across frequency and time, and every renderer
hears it (BENCHMARKS.md "Sharper mels"). :func:`adavoice.postfilter.sharpen_mel` undoes part
of that with one fixed number. This module learns it instead, in the manner of Kaneko et al.'s
GAN post-filter for statistical parametric synthesis (ICASSP 2017): a small 2-D convolution
stack over (band, frame) adds a residual to the predicted mel; it is trained on the frozen
base's own predictions of the base corpus (frame-aligned with the recordings: the aligner's
durations, the decoder fed as synthesis feeds it) against the recordings' mels, by L1 plus a
patch discriminator's least-squares adversarial loss and feature matching, so it learns the
recordings' texture rather than their average. It works on any mel the base renders; an
adapted voice may carry its own values of the few tensors :func:`voice_tensor_names` lists
(every bias and the output layer, a few hundred numbers), tuned on its own clips against the
critic the base ships beside the filter (adavoice.adaptation.postfilter). The last layer
starts at zero, so an untrained post-filter passes the mel through unchanged.

>>> net = MelPostfilter(MelPostfilterConfig(channels=8, layers=3)).eval()
>>> mel = torch.randn(80, 20) - 5
>>> bool(torch.equal(net(mel), mel)), tuple(net(mel.unsqueeze(0)).shape)
(True, (1, 80, 20))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from adavoice.artifacts import damaged, load_weights, read_artifact, write_artifact
from adavoice.config import JsonConfig
from adavoice.errors import ConfigError, ModelFormatError
from adavoice.runtime.format import POSTFILTER_INPUTS as VOICE_PREFIX  # noqa: F401 (re-export)

KIND = "adavoice-mel-postfilter"
CRITIC_KIND = "adavoice-mel-critic"
CRITIC_DIR = "critic"  # inside a post-filter folder: the discriminator, for voice tuning
SLOPE = 0.2


@dataclass(frozen=True)
class MelPostfilterConfig(JsonConfig):
    """``center``/``scale`` standardise the log-mel before the convolutions (the base corpus's
    mean and spread; the residual is added in log-mel units)."""

    n_mels: int = 80
    channels: int = 32
    layers: int = 5
    kernel: int = 3
    center: float = -5.6
    scale: float = 2.7

    def __post_init__(self) -> None:
        if self.layers < 2 or self.channels < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError("a mel post-filter needs layers >= 2, channels >= 1 and an odd "
                              "kernel")
        if not self.scale > 0:
            raise ConfigError("a mel post-filter's scale must be positive")


class MelPostfilter(nn.Module):
    """forward(mel (n_mels, T) or (B, n_mels, T) log-mel) -> the same shape, mel + residual."""

    def __init__(self, cfg: MelPostfilterConfig):
        super().__init__()
        self.cfg = cfg
        pad = cfg.kernel // 2
        widths = [1] + [cfg.channels] * (cfg.layers - 1)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, cfg.kernel, padding=pad)
                                   for a, b in zip(widths, widths[1:], strict=False))
        self.out = nn.Conv2d(cfg.channels, 1, cfg.kernel, padding=pad)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, mel: torch.Tensor, own: dict[str, torch.Tensor] | None = None
                ) -> torch.Tensor:
        """``own``: values that replace some of :meth:`voice_tensors` for this call (the
        exported graph takes them as inputs)."""
        own = own or {}
        pad = self.cfg.kernel // 2
        batch = mel if mel.dim() == 3 else mel.unsqueeze(0)
        x = ((batch - self.cfg.center) / self.cfg.scale).unsqueeze(1)
        for i, conv in enumerate(self.convs):
            bias = own.get(f"convs.{i}.bias", conv.bias)
            x = nn.functional.leaky_relu(nn.functional.conv2d(x, conv.weight, bias, padding=pad),
                                         SLOPE)
        residual = nn.functional.conv2d(x, own.get("out.weight", self.out.weight),
                                        own.get("out.bias", self.out.bias), padding=pad)
        out = batch + residual.squeeze(1) * self.cfg.scale
        return out if mel.dim() == 3 else out[0]

    def save(self, folder: str | Path, training: dict | None = None, half: bool = False) -> Path:
        return write_artifact(folder, KIND, {"postfilter": self.cfg.to_dict(),
                                             "training": training or {}},
                              self.state_dict(), half)

    def voice_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors a voice may hold its own values of (float32 copies)."""
        state = self.state_dict()
        return {name: state[name].detach().float().clone() for name in voice_tensor_names(self)}

    def voice_values(self, own: dict[str, torch.Tensor] | None = None
                     ) -> dict[str, torch.Tensor]:
        """:meth:`voice_tensors` with a voice's ``own`` values (names without the bundle's
        prefix) in place of the base's: what ``forward(mel, own)`` and the exported graph are
        given. ModelFormatError when ``own`` are not those tensors, do not fit or are not
        finite."""
        values = self.voice_tensors()
        own = own or {}
        unknown = sorted(set(own) - set(values))
        misfit = sorted(k for k, v in own.items() if k in values and v.shape != values[k].shape)
        if unknown or misfit:
            raise ModelFormatError(
                "the voice's post-filter tensors do not fit the base's post-filter "
                f"({', '.join((unknown + misfit)[:3])})",
                fix="adapt the voice again on this base")
        if not all(torch.isfinite(v).all() for v in own.values()):
            raise ModelFormatError("the voice's post-filter tensors hold NaN or infinite values")
        return {**values, **{k: v.float() for k, v in own.items()}}

    @classmethod
    def from_dir(cls, folder: str | Path) -> "MelPostfilter":
        """The post-filter of a folder written by :meth:`save` (its ``training`` record, which
        names the base it was trained on, is kept as ``provenance``)."""
        config, state = read_artifact(folder, KIND, "mel post-filter")
        with damaged(folder, "mel post-filter"):
            net = cls(MelPostfilterConfig.from_dict(config["postfilter"]))
            net.provenance = dict(config.get("training", {}))
        return load_weights(net, state, folder).eval()


def voice_tensor_names(net: MelPostfilter) -> list[str]:
    """Every bias and the output layer's weight: what a voice tunes (a few hundred numbers;
    the hidden kernels stay the base's)."""
    return [name for name, _ in net.named_parameters()
            if name.endswith(".bias") or name.startswith("out.")]


class MelCritic(nn.Module):
    """Training only: a patch discriminator over standardised log-mel crops (B, n_mels, T) ->
    ([scores (B, patches)], [hidden maps]), shaped like
    :class:`adavoice.models.discriminators.VocoderCritic`'s output (one sub-discriminator), so
    its least-squares and feature-matching losses apply unchanged."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 128), center: float = -5.6,
                 scale: float = 2.7):
        super().__init__()
        self.center, self.scale, self.channels = center, scale, tuple(channels)
        layers, previous = [], 1
        for i, width in enumerate(channels):
            stride = (2, 1) if i < len(channels) - 1 else (1, 1)  # halve the bands, keep time
            layers.append(weight_norm(nn.Conv2d(previous, width, (5, 3), stride, (2, 1))))
            previous = width
        self.layers = nn.ModuleList(layers)
        self.score = weight_norm(nn.Conv2d(previous, 1, (3, 3), 1, (1, 1)))

    def forward(self, mel: torch.Tensor):
        x = ((mel - self.center) / self.scale).unsqueeze(1)
        features = []
        for layer in self.layers:
            x = nn.functional.leaky_relu(layer(x), SLOPE)
            features.append(x)
        x = self.score(x)
        features.append(x)
        return [x.flatten(1)], [features]

    def save(self, folder: str | Path, half: bool = False) -> Path:
        """Write the critic (weight-norm parametrisations as stored by ``state_dict``)."""
        return write_artifact(folder, CRITIC_KIND,
                              {"critic": {"channels": list(self.channels),
                                          "center": self.center, "scale": self.scale}},
                              self.state_dict(), half)

    @classmethod
    def from_dir(cls, folder: str | Path) -> "MelCritic":
        config, state = read_artifact(folder, CRITIC_KIND, "mel post-filter critic")
        with damaged(folder, "mel post-filter critic"):
            spec = config["critic"]
            net = cls(tuple(int(c) for c in spec["channels"]), float(spec["center"]),
                      float(spec["scale"]))
        return load_weights(net, state, folder)
