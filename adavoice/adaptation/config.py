"""Adapter settings: which kind, how long, how fast. Stored in every bundle's config.

>>> AdapterConfig.for_kind("cln").learning_rate
0.003
>>> AdapterConfig.for_kind("lora", lora_rank=8).lora_rank
8
>>> cfg = AdapterConfig.for_kind("cln")
>>> cfg.step_limit(transcribed=True), cfg.step_limit(transcribed=False)
(200, 100)
>>> AdapterConfig.for_kind("cln", steps=50).step_limit(transcribed=False)  # --steps caps both
50
>>> AdapterConfig.for_kind("embedding").step_limit(transcribed=False)
200
>>> AdapterConfig.for_kind("cln").postfilter_steps  # a voice's own post-filter values: opt-in
0
"""

from __future__ import annotations

from dataclasses import dataclass

from adavoice.config import JsonConfig
from adavoice.errors import ConfigError

KINDS = ("cln", "lora", "decoder", "embedding")
DEFAULT_MAX_UTTERANCES = 20  # AdaSpeech adapts from 20 sentences
INITS = ("weighted", "nearest", "mean")
VALIDATIONS = ("teacher-forced", "synthesis")
CLN_PARAMETERS = ("projection", "direct")
LORA_TARGETS = ("conv1", "conv2")  # the FFN convolutions of each decoder block

# Per-kind learning rates: the fewer and the more "global" the trained numbers, the larger the
# step they tolerate (a speaker vector alone moves fast; a full decoder must move slowly).
KIND_LEARNING_RATES = {"embedding": 1e-2, "cln": 3e-3, "lora": 1e-3, "decoder": 3e-4}
# Step caps without transcripts (None: ``steps``). That path's held-out score is reconstruction
# through the mel encoder, which keeps improving after synthesis from text has stopped. On a
# development set (slt, 40 sentences none of the benchmark uses; BENCHMARKS.md) 100 steps
# against 200 gave MCD 5.64 / 5.80 dB (cln), 5.50 / 5.71 (decoder), 5.69 / 5.68 (lora), but
# 7.68 / 7.45 for embedding, whose one vector moves slowly.
KIND_UNTRANSCRIBED_STEPS = {"embedding": None, "cln": 100, "lora": 100, "decoder": 100}


@dataclass(frozen=True)
class AdapterConfig(JsonConfig):
    """kind: cln | lora | decoder | embedding (see ``adavoice.adaptation.kinds``).

    ``validation_clips`` of the adaptation clips are held out for early stopping: a validation
    pass every ``validate_every`` steps, stop after ``patience`` passes without improvement,
    keep the best state. ``init``: where the new speaker vector starts (``weighted``: seen
    speakers' vectors weighted by speaker-encoder similarity; ``nearest``: the most similar
    seen speaker; ``mean``: the mean seen speaker).

    ``cln_parameters`` (kind ``cln``): ``projection`` trains copies of the CLN projections
    from the speaker vector (AdaSpeech); ``direct`` trains the per-norm (scale, bias) vectors
    that the bundle stores, starting from the projections' output for the start vector.

    With transcripts, ``validation`` says how a held-out clip is scored: ``teacher-forced``
    decodes from the real pitch, energy and phoneme-level condition; ``synthesis`` decodes
    from the predicted ones, as synthesis will (both on the aligner's durations).
    ``predicted_condition_share``: the share of training clips decoded from the phoneme-level
    predictor's condition instead of the real one (the base trains with 0.5). Untranscribed
    adaptation reads no text, so neither applies there.

    ``train_utterance_vector``: train the voice's utterance-level vector (AdaSpeech's
    utterance condition, added to the text side; stored either way) instead of keeping the
    utterance encoder's mean over the clips. Not for ``embedding``, whose floor is the speaker
    vector alone."""

    kind: str = "cln"
    steps: int = 200
    untranscribed_steps: int | None = 100  # None: ``steps`` caps both modes
    learning_rate: float = 3e-3
    # Untranscribed (AdaSpeech 2) adaptation fits the decoder to the mel encoder's output, which
    # is not the text side it will see at synthesis time; a smaller step transfers better.
    untranscribed_lr_scale: float = 1.0 / 3.0
    batch_size: int = 6
    validation_clips: int = 2
    validate_every: int = 25
    patience: int = 4
    init: str = "weighted"
    init_temperature: float = 0.05
    lora_rank: int = 4
    lora_alpha: int = 8
    # The FFN convolutions of each decoder block. Not the attention's out_proj: torch's
    # MultiheadAttention reads out_proj.weight directly and never calls the wrapped module, so a
    # LoRA there would be stored but never used.
    lora_targets: tuple = ("conv1", "conv2")
    cln_parameters: str = "projection"
    validation: str = "teacher-forced"
    predicted_condition_share: float = 0.0
    train_utterance_vector: bool = False
    # the voice's own values of the base's post-filter biases and output layer, tuned after the
    # adapter on the same clips (adaptation.postfilter); 0 (default): the base's values. Off by
    # default: on 6 adapted voices it moved DistillMOS by +0.15 to -0.14, +0.01 on average
    # (BENCHMARKS.md "A post-filter per voice"). The other settings are what was measured:
    # 1,000 steps of 32-frame crops (chosen on adapted slt against four other settings)
    postfilter_steps: int = 0  # measured at 1000 (--postfilter-steps 1000)
    postfilter_learning_rate: float = 1e-4
    postfilter_batch: int = 12
    postfilter_segment: int = 32  # frames a crop holds
    seed: int = 0

    def __post_init__(self) -> None:
        self.check_field_types()
        if self.kind not in KINDS:
            raise ConfigError(f"unknown adapter kind {self.kind!r}", fix=" | ".join(KINDS))
        if self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}", fix=" | ".join(INITS))
        if self.steps < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ConfigError("steps and batch_size must be >= 1, learning_rate > 0")
        if self.untranscribed_steps is not None and self.untranscribed_steps < 1:
            raise ConfigError("untranscribed_steps must be >= 1 (or None: use steps)")
        if not 0 < self.untranscribed_lr_scale <= 1:
            raise ConfigError("untranscribed_lr_scale must be in (0, 1]")
        if self.validate_every < 1 or self.patience < 1 or self.validation_clips < 0:
            raise ConfigError("validate_every and patience must be >= 1, validation_clips >= 0")
        if self.cln_parameters not in CLN_PARAMETERS:
            raise ConfigError(f"unknown cln_parameters {self.cln_parameters!r}",
                              fix=" | ".join(CLN_PARAMETERS))
        if self.validation not in VALIDATIONS:
            raise ConfigError(f"unknown validation {self.validation!r}",
                              fix=" | ".join(VALIDATIONS))
        if not 0 <= self.predicted_condition_share <= 1:
            raise ConfigError("predicted_condition_share must be in [0, 1]")
        if self.lora_alpha <= 0:
            raise ConfigError("lora_alpha must be > 0")
        if self.lora_rank < 1:
            raise ConfigError("lora_rank must be >= 1")
        if (not self.lora_targets or len(set(self.lora_targets)) != len(self.lora_targets)
                or any(t not in LORA_TARGETS for t in self.lora_targets)):
            raise ConfigError(f"lora_targets must name distinct decoder layers among "
                              f"{', '.join(LORA_TARGETS)}, got {list(self.lora_targets)}")
        if (self.postfilter_steps < 0 or self.postfilter_batch < 1
                or self.postfilter_segment < 8 or not self.postfilter_learning_rate > 0):
            raise ConfigError("postfilter_steps must be >= 0, postfilter_batch >= 1, "
                              "postfilter_segment >= 8 and postfilter_learning_rate > 0")
        if self.train_utterance_vector and self.kind == "embedding":
            raise ConfigError("train_utterance_vector does not apply to the embedding kind, "
                              "whose floor is the speaker vector alone")

    @classmethod
    def for_kind(cls, kind: str = "cln", **overrides) -> "AdapterConfig":
        """Defaults for ``kind`` (its learning rate), with ``overrides`` applied."""
        if kind not in KINDS:
            raise ConfigError(f"unknown adapter kind {kind!r}", fix=" | ".join(KINDS))
        values = {"kind": kind, "learning_rate": KIND_LEARNING_RATES[kind],
                  "untranscribed_steps": KIND_UNTRANSCRIBED_STEPS[kind]}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "untranscribed_steps" in overrides:  # None here means: ``steps`` caps both
            values["untranscribed_steps"] = overrides["untranscribed_steps"]
        elif overrides.get("steps") is not None:
            values["untranscribed_steps"] = None  # an explicit step count caps both modes
        return cls(**values)

    def step_limit(self, transcribed: bool) -> int:
        """The step cap of one mode."""
        if transcribed or self.untranscribed_steps is None:
            return self.steps
        return self.untranscribed_steps
