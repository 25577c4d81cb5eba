"""Neural vocoder (Vocos family, DESIGN §5): ConvNeXt backbone over the log-mel predicting
log-magnitude and phase of the STFT (the phase as one angle per bin, or with
``phase_head="vector"`` as the direction of two numbers), then the ONNX-friendly
``ConvISTFT``. No upsampling layers: the inverse STFT does the frame-to-sample step, which is
why it is fast on a CPU.

>>> vocoder = Vocoder(VocoderConfig.tiny()).eval()
>>> vocoder(torch.randn(1, 80, 20)).shape   # (B, (T - 1) * hop_length)
torch.Size([1, 4864])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from adavoice.artifacts import damaged, load_weights, read_artifact, write_artifact
from adavoice.config import JsonConfig, MelConfig
from adavoice.errors import ConfigError
from adavoice.nn.istft import ConvISTFT

KIND = "adavoice-vocoder"


class AnglePhase:
    """The phase as one number per bin, read as an angle (Vocos)."""

    numbers_per_bin = 1

    @staticmethod
    def direction(angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cos(angle), torch.sin(angle)


class VectorPhase:
    """The phase as the direction of two numbers per bin (APNet's parallel estimation): a
    target phase has no wrap to cross."""

    numbers_per_bin = 2

    @staticmethod
    def direction(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        radius = torch.sqrt(x ** 2 + y ** 2 + 1e-12)
        return x / radius, y / radius


# a new way to state the phase is one class here
PHASE_HEADS = {"angle": AnglePhase, "vector": VectorPhase}


@dataclass(frozen=True)
class VocoderConfig(JsonConfig):
    """Backbone width/depth plus the STFT the head inverts (same hop as the mel front end)."""

    n_mels: int = 80
    dim: int = 256
    intermediate: int = 768
    layers: int = 6
    kernel_size: int = 7
    n_fft: int = 1024
    hop_length: int = 256
    max_log_magnitude: float = 6.0
    # "angle": one number per bin read as the phase (Vocos); "vector": two numbers per bin
    # whose direction is the phase (APNet's parallel estimation), so a phase target has no
    # wrap to cross. "vector" is the default: it measured better with the phase losses
    # (BENCHMARKS.md seventh session).
    phase_head: str = "vector"

    def __post_init__(self) -> None:
        if self.phase_head not in PHASE_HEADS:
            raise ConfigError(f"unknown phase_head {self.phase_head!r}",
                              fix=" | ".join(PHASE_HEADS))
        if self.kernel_size % 2 == 0:
            raise ConfigError("kernel_size must be odd")
        if self.n_fft < self.hop_length:
            raise ConfigError("n_fft must be >= hop_length")

    @classmethod
    def tiny(cls, **kw) -> "VocoderConfig":
        return cls(**{"dim": 64, "intermediate": 128, "layers": 2, **kw})

    @classmethod
    def small(cls, **kw) -> "VocoderConfig":
        return cls(**kw)

    @classmethod
    def preset(cls, name: str, **kw) -> "VocoderConfig":
        if name not in ("tiny", "small"):
            raise ConfigError(f"unknown vocoder preset {name!r}", fix="tiny | small")
        return getattr(cls, name)(**kw)

    @classmethod
    def for_mel(cls, preset: str, mel: MelConfig, **kw) -> "VocoderConfig":
        return cls.preset(preset, n_mels=mel.n_mels, n_fft=mel.n_fft, hop_length=mel.hop_length,
                          **kw)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP (GELU) -> layer scale, residual.

    forward(x (B, dim, T)) -> (B, dim, T)."""

    def __init__(self, dim: int, intermediate: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.expand = nn.Linear(dim, intermediate)
        self.project = nn.Linear(intermediate, dim)
        self.scale = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x):
        hidden = self.depthwise(x).transpose(1, 2)
        hidden = self.project(nn.functional.gelu(self.expand(self.norm(hidden))))
        return x + (self.scale * hidden).transpose(1, 2)


class Vocoder(nn.Module):
    """forward(mel (B, n_mels, T) natural-log mel) -> wave (B, (T - 1) * hop_length) in [-1, 1]
    (not clipped; the STFT head can exceed it slightly)."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel_size, 1.0 / cfg.layers)
            for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        bins = cfg.n_fft // 2 + 1
        self.phase = PHASE_HEADS[cfg.phase_head]
        self.head = nn.Linear(cfg.dim, (1 + self.phase.numbers_per_bin) * bins)
        self.istft = ConvISTFT(cfg.n_fft, cfg.hop_length)

    def components(self, mel: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(magnitude, cos phase, sin phase), each (B, n_fft // 2 + 1, T)."""
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)
        log_magnitude, *phase_parts = out.chunk(1 + self.phase.numbers_per_bin, dim=1)
        cos, sin = self.phase.direction(*phase_parts)
        magnitude = torch.exp(log_magnitude.clamp(max=self.cfg.max_log_magnitude))
        return magnitude, cos, sin

    def spectrum(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(magnitude, phase in (-pi, pi]), each (B, n_fft // 2 + 1, T)."""
        magnitude, cos, sin = self.components(mel)
        return magnitude, torch.atan2(sin, cos)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        magnitude, cos, sin = self.components(mel)
        return self.istft.from_cartesian(magnitude * cos, magnitude * sin)

    # ---- I/O ----------------------------------------------------------------------------------
    def save(self, folder: str | Path, mel: MelConfig, training: dict | None = None,
             half: bool = False) -> Path:
        return write_artifact(folder, KIND, {"vocoder": self.cfg.to_dict(),
                                                 "mel": mel.to_dict(), "training": training or {}},
                              self.state_dict(), half)

    @classmethod
    def from_dir(cls, folder: str | Path) -> tuple["Vocoder", MelConfig]:
        config, state = read_artifact(folder, KIND, "vocoder")
        with damaged(folder, "vocoder"):
            model = cls(VocoderConfig.from_dict(config["vocoder"]))
            mel = MelConfig.from_dict(config["mel"])
        return load_weights(model, state, folder), mel


class NeuralVocoder:
    """Callable renderer with the Griffin-Lim interface: mel (n_mels, T) or (B, n_mels, T)
    -> wave (T_samples,) or (B, T_samples), clipped to [-1, 1]."""

    def __init__(self, vocoder: Vocoder):
        self.vocoder = vocoder.eval()

    @torch.no_grad()
    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        single = mel.dim() == 2
        wave = self.vocoder(mel.unsqueeze(0) if single else mel).clamp(-1.0, 1.0)
        return wave[0] if single else wave


def load_renderer(folder: str | Path, mel: MelConfig):
    """The renderer saved in ``folder`` (a base's ``vocoder/``): this module's iSTFT vocoder,
    or a HiFi-GAN generator (a shrunk copy of the universal one, :mod:`adavoice.models.prune`),
    told apart by the artifact's kind. ModelFormatError when it renders mels other than ``mel``
    (for a HiFi-GAN: sample rate, bands and hop, and the whole front end when its provenance
    records the ``mel`` it was trained on).
    """
    from adavoice.artifacts import CONFIG_NAME
    from adavoice.config import read_json
    from adavoice.errors import MissingFileError, ModelFormatError
    from adavoice.models import hifigan

    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise MissingFileError("no vocoder here", path=folder)
    try:
        config = read_json(path, "vocoder config")
    except ConfigError as exc:
        raise ModelFormatError(exc.message, path=path) from exc
    if not isinstance(config, dict):
        raise ModelFormatError("the vocoder config is not a JSON object", path=path)
    kind = config.get("kind")
    if kind not in (KIND, hifigan.KIND):
        raise ModelFormatError(f"not a vocoder config (kind {kind!r}; adavoice reads {KIND!r} "
                               f"and {hifigan.KIND!r})", path=path)
    if kind == hifigan.KIND:
        from adavoice.models.universal import PASS_FRAMES, HiFiGANRenderer

        generator = hifigan.HiFiGAN.from_dir(folder)
        provenance = config.get("provenance")
        recorded = provenance.get("mel") if isinstance(provenance, dict) else None
        if not generator.cfg.fits(mel) or (isinstance(recorded, dict)
                                           and MelConfig.from_dict(recorded) != mel):
            raise ModelFormatError("the vocoder renders another mel front end", path=folder)
        # the grid: the short windows were measured faster for the universal generator only,
        # and a narrow one's passes are a quarter of the memory or less
        return HiFiGANRenderer(generator, pass_frames=PASS_FRAMES)
    vocoder, trained_on = Vocoder.from_dir(folder)
    if trained_on != mel:
        raise ModelFormatError("the vocoder was trained on another mel front end", path=folder)
    return NeuralVocoder(vocoder)
