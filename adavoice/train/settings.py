"""Training settings and every trainer's defaults, in one place and without torch, so that the
CLI shows the library's defaults in ``--help`` without restating them (or importing torch to
start). The trainers take their keyword defaults from here.

>>> TrainConfig.for_steps(500).warmup_steps
50
>>> BASE_RUN.steps, VOCODER_RUN.batch_size
(20000, 16)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """The loop's settings: schedule, batch budget, validation and checkpoint cadence."""

    steps: int = 20000
    learning_rate: float = 1e-3
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    max_frames: int = 6000
    log_every: int = 25
    validate_every: int = 500
    checkpoint_every: int = 250
    seed: int = 0
    amp: bool = True  # only takes effect on CUDA

    @classmethod
    def for_steps(cls, steps: int, **overrides) -> "TrainConfig":
        """A run of ``steps`` steps whose warm-up is a tenth of it, at most 1,000 steps."""
        return cls(steps=steps, warmup_steps=min(1000, max(1, steps // 10)), **overrides)



@dataclass(frozen=True)
class BaseRun:
    """``adavoice train base`` (train.acoustic.train_base)."""

    preset: str = "small"
    steps: int = 20000
    binarize_from: int = 2000  # step the aligner's binarisation loss starts at
    aligner_lr_scale: float = 3.0
    predicted_condition_share: float = 0.5


@dataclass(frozen=True)
class SpeakerEncoderRun:
    """``adavoice train speaker-encoder`` (train.speaker.train_speaker_encoder)."""

    preset: str = "small"
    steps: int = 2000
    batch_size: int = 32


@dataclass(frozen=True)
class SpeechEncoderRun:
    """``adavoice train mel-encoder`` (train.speech_encoder.train_mel_encoder)."""

    steps: int = 3000
    pull: float = 1.0
    layers: int = 2
    speaker_free: bool = True
    input_norm: bool = True


@dataclass(frozen=True)
class VocoderRun:
    """``adavoice train vocoder`` (train.vocoder.train_vocoder)."""

    preset: str = "small"
    steps: int = 20000
    batch_size: int = 16
    segment_frames: int = 32
    critic_warmup: int = 200
    phase_weight: float = 1.0
    phase_weighting: str = "uniform"
    magnitude_weight: float = 0.0


@dataclass(frozen=True)
class PostfilterRun:
    """``adavoice train postfilter`` (train.mel_postfilter.train_postfilter)."""

    steps: int = 4000
    channels: int = 32
    layers: int = 5
    segment: int = 96  # frames a training crop holds
    batch: int = 12
    learning_rate: float = 2e-4
    l1_weight: float = 5.0
    feature_weight: float = 2.0
    critic_warmup: int = 100


BASE_RUN, SPEAKER_ENCODER_RUN = BaseRun(), SpeakerEncoderRun()
POSTFILTER_RUN = PostfilterRun()
SPEECH_ENCODER_RUN, VOCODER_RUN = SpeechEncoderRun(), VocoderRun()
