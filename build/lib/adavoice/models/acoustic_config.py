"""AcousticConfig: architecture numbers of the acoustic model, with tiny/small/base presets.

>>> cfg = AcousticConfig.tiny()
>>> AcousticConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from adavoice.config import JsonConfig
from adavoice.errors import ConfigError


@dataclass(frozen=True)
class AcousticConfig(JsonConfig):
    n_symbols: int = 64
    n_speakers: int = 1
    n_mels: int = 80
    hidden: int = 128
    encoder_layers: int = 4
    decoder_layers: int = 4
    heads: int = 2
    ffn_hidden: int = 512
    ffn_kernel: int = 5
    dropout: float = 0.1
    # Attention dropout measured ~2x slower per step on CPU for no quality gain: off by default.
    attention_dropout: float = 0.0
    speaker_dim: int = 64
    variance_filter: int = 128
    variance_kernel: int = 3
    variance_dropout: float = 0.5
    pitch_bins: int = 256
    energy_bins: int = 256
    # pitch and energy are standardised per corpus; buckets cover this many std either side
    variance_range_std: float = 3.0
    phoneme_condition_dim: int = 4
    # tanh on the phoneme-level encoder's output. Unbounded, its targets reached |30| and the
    # decoder leant on them: teacher-forced mel L1 0.43, with the predicted condition 0.72
    # (BENCHMARKS.md).
    phoneme_condition_tanh: bool = True
    utterance_encoder: bool = True
    aligner_attention_dim: int = 80
    # Defaults are those of models trained before the aligner standardised its mel input (their
    # config.json lacks these keys); the presets and training set the working values.
    aligner_temperature: float = 0.005
    # Training replaces the mel centre and scale with the corpus's own; the typical log-mel of
    # this front end (ln, floor 1e-5) centres near -5 with a spread near 2.5.
    aligner_mel_center: float = -5.0
    aligner_mel_scale: float = 2.5
    # the aligner's keys come from a token embedding of its own, not the text encoder's, so the
    # mel loss does not move them (with a shared table and no faster aligner rate, alignment
    # took 2-3x the steps; BENCHMARKS.md separates neither share)
    aligner_own_embedding: bool = True

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        if min(self.n_symbols, self.n_speakers, self.encoder_layers, self.decoder_layers) < 1:
            raise ConfigError("n_symbols, n_speakers and layer counts must be >= 1")
        if not 0 <= self.dropout < 1 or not 0 <= self.attention_dropout < 1:
            raise ConfigError("dropout must be in [0, 1)")
        if self.aligner_temperature <= 0 or self.aligner_mel_scale <= 0:
            raise ConfigError("aligner_temperature and aligner_mel_scale must be > 0")

    def replace(self, **changes) -> "AcousticConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def tiny(cls, **overrides) -> "AcousticConfig":
        """Seconds-fast on CPU: for tests and examples."""
        base = dict(hidden=32, encoder_layers=1, decoder_layers=1, heads=2, ffn_hidden=64,
                    ffn_kernel=3, speaker_dim=16, variance_filter=32, pitch_bins=16,
                    energy_bins=16, aligner_attention_dim=16)
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides) -> "AcousticConfig":
        """The shipped CPU preset: sized so it trains on a 2-core CPU in about an hour."""
        return cls(**{**overrides})

    @classmethod
    def base(cls, **overrides) -> "AcousticConfig":
        """FastSpeech 2 paper size (GPU training)."""
        base = dict(hidden=256, ffn_hidden=1024, ffn_kernel=9, variance_filter=256,
                    speaker_dim=128)
        return cls(**{**base, **overrides})

    @classmethod
    def preset(cls, name: str, **overrides) -> "AcousticConfig":
        if name not in ("tiny", "small", "base"):
            raise ConfigError(f"unknown preset {name!r}", fix="use tiny, small or base")
        return getattr(cls, name)(**overrides)
