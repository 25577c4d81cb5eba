"""The public surface: ``BaseModel`` (load, speakers, synthesize), ``Voice`` (an adapted
voice: load, save, synthesize), ``adapt()`` and ``SynthesisConfig``. Nothing in the package
imports this module: it wraps what the layers below return.

>>> import adavoice
>>> callable(adavoice.BaseModel.load) and callable(adavoice.adapt)
True
"""

from __future__ import annotations

import numbers
from pathlib import Path

import torch

from adavoice.adaptation.bundle import check_base, read_bundle, write_bundle
from adavoice.adaptation.config import DEFAULT_MAX_UTTERANCES, AdapterConfig
from adavoice.adaptation.kinds import condition_from_tensors
from adavoice.adaptation.loop import adapt_base
from adavoice.audio import Audio
from adavoice.config import SynthesisConfig
from adavoice.errors import (
    AdapterMismatchError,
    ConfigError,
    MissingFileError,
    ModelFormatError,
)
from adavoice.models.base_model import SHIPPED_MODELS, BaseModel

__all__ = ["SHIPPED_MODELS", "Audio", "BaseModel", "SynthesisConfig", "Voice", "adapt"]


def _check_voice_config(config: dict, folder) -> SynthesisConfig:
    """The bundle's synthesis defaults; ModelFormatError unless the config has the fields
    loading and synthesis read, of the right types (read_bundle has checked its kind and
    format version)."""
    def bad(what: str):
        return ModelFormatError(f"adapter_config.json: {what}", path=folder)

    base, adapter = config.get("base"), config.get("adapter")
    if not isinstance(base, dict) or not isinstance(adapter, dict):
        raise bad("'base' and 'adapter' must both be present, as objects")
    if not all(isinstance(base.get(k, ""), str) for k in ("name", "content_hash")):
        raise bad("'base' name and content_hash must be strings")
    defaults = config.get("defaults", {})
    if not isinstance(defaults, dict):
        raise bad("'defaults' must be an object")
    try:
        return SynthesisConfig.from_dict(defaults)
    except ConfigError as exc:
        raise bad(f"'defaults' are not valid synthesis settings ({exc.message})") from exc


def _check_postfilter(config: dict, base: BaseModel) -> None:
    """AdapterMismatchError when a voice's own post-filter values were tuned on another
    post-filter than the base's (one retrained since)."""
    have = base.postfilter_id
    record = config.get("postfilter")
    made_for = record.get("base_postfilter_sha256") if isinstance(record, dict) else None
    if have is not None and made_for != have:
        raise AdapterMismatchError(
            "this voice's post-filter values were tuned on another post-filter than the "
            "base's (retrained since?)", path=base.folder / "postfilter",
            fix="adapt the voice again on this base")


class Voice:
    """An adapted voice: a few tensors beside a shared, frozen base model.

    >>> import tempfile
    >>> clips = SHIPPED_MODELS.parent / "examples" / "demo-voice"
    >>> voice = adapt("demo", clips, steps=2, max_utterances=6, progress=False)
    >>> folder = voice.save(Path(tempfile.mkdtemp()) / "slt")
    >>> again = Voice.load(folder)   # shares the base with every voice loaded in this process
    >>> again.kind, again.stored_parameters, again.synthesize("Hello there.").sample_rate
    ('cln', 2240, 22050)
    """

    def __init__(self, base: BaseModel, tensors: dict[str, torch.Tensor], config: dict):
        self.base, self.tensors, self.config = base, tensors, config
        self.defaults = _check_voice_config(config, None).over(SynthesisConfig.neutral())
        self.adapter_config = AdapterConfig.from_dict(config["adapter"])
        self.condition = condition_from_tensors(base.model, self.adapter_config, tensors)
        if self.condition.postfilter is not None:
            _check_postfilter(config, base)
            if not base.has_postfilter:  # nothing to apply them to
                self.condition.postfilter = None
            else:  # values that do not fit are refused now, not at the first sentence
                base.mel_filter("universal", self.condition)

    @classmethod
    def load(cls, folder: str | Path, base: BaseModel | str | Path | None = None) -> "Voice":
        """Load a bundle. ``base`` defaults to the one the bundle names, shared per process;
        AdapterMismatchError when the base is not the one the voice was made for."""
        tensors, config = read_bundle(folder)
        _check_voice_config(config, folder)
        if base is None:
            named = config["base"].get("name", "demo")
            try:
                base = BaseModel.shared(named)
            except MissingFileError as exc:
                raise MissingFileError(f"the base this voice names is not here ({named})",
                                       path=folder, fix="pass the base: Voice.load(folder, "
                                       "base=...) or `adavoice synth --voice V --model BASE`"
                                       ) from exc
        elif not isinstance(base, BaseModel):
            base = BaseModel.shared(base)
        check_base(config, base.content_hash, folder)
        try:
            return cls(base, tensors, config)
        except ModelFormatError as exc:
            raise ModelFormatError(exc.message, path=folder) from exc
        except (ConfigError, AttributeError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"adapter_config.json 'adapter' is not a valid adapter "
                                   f"config ({exc})", path=folder) from exc

    def save(self, folder: str | Path) -> Path:
        """Write the bundle (see adavoice.adaptation.bundle.write_bundle)."""
        return write_bundle(folder, self.tensors, self.config)

    @property
    def kind(self) -> str:
        return self.adapter_config.kind

    @property
    def sample_rate(self) -> int:
        return self.base.sample_rate

    @property
    def stored_parameters(self) -> int:
        return int(sum(t.numel() for t in self.tensors.values()))

    def settings(self, config: SynthesisConfig | None = None, **knobs) -> SynthesisConfig:
        """``config`` and ``knobs`` over this voice's defaults."""
        return SynthesisConfig.make(config, **knobs).over(self.defaults)

    def mel(self, text: str, config: SynthesisConfig | None = None, **knobs) -> torch.Tensor:
        """(n_mels, T) log-mel; settings default to the bundle's."""
        return self.base.mel(text, self.condition, self.settings(config, **knobs))

    def synthesize(self, text: str, config: SynthesisConfig | None = None, **knobs) -> Audio:
        """Speak ``text``; ``knobs`` (length_scale, pitch_shift, energy_scale, vocoder) go
        over ``config``, which goes over the bundle's defaults."""
        return self.base.render(text, self.condition, self.settings(config, **knobs))

    def synthesize_stream(self, text: str, config: SynthesisConfig | None = None, **knobs):
        """:meth:`synthesize` as an iterator of float32 waves, one per piece of the text."""
        return self.base.stream(text, self.condition, self.settings(config, **knobs))


def adapt(base: BaseModel | str | Path, data: str | Path, kind: str | None = None,
          untranscribed: bool = False, steps: int | None = None,
          max_utterances: int = DEFAULT_MAX_UTTERANCES,
          config: AdapterConfig | None = None, speaker: str | None = None,
          progress: bool = True, name: str | None = None) -> Voice:
    """Adapt ``base`` (a BaseModel, ``"demo"`` or a folder) to the voice in ``data`` -> Voice.

    ``data``: a manifest folder or a plain audio folder (optional ``metadata.csv``). Clips
    with no transcripts at all, or ``untranscribed=True``, select AdaSpeech 2 (no text read).
    ``config`` (an AdapterConfig) replaces ``kind`` (default ``cln``) and ``steps``."""
    if config is not None and kind not in (None, config.kind):
        raise ConfigError(f"kind {kind!r} disagrees with config.kind {config.kind!r}",
                          fix="pass one of them")
    if isinstance(steps, numbers.Integral) and not isinstance(steps, bool):
        steps = int(steps)  # numpy ints too; AdapterConfig refuses anything else
    cfg = config or AdapterConfig.for_kind(kind or "cln", steps=steps)
    if not isinstance(base, BaseModel):
        base = BaseModel.shared(base)
    result = adapt_base(base, data, cfg, untranscribed=untranscribed,
                        max_utterances=max_utterances, speaker=speaker, progress=progress,
                        name=name)
    return Voice(base, result.tensors, result.config)
