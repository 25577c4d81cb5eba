"""Frozen, validated configuration dataclasses with JSON round-trip.

>>> cfg = MelConfig()
>>> MelConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from pathlib import Path
from typing import Any, TypeVar

from adavoice.errors import ConfigError, MissingFileError

T = TypeVar("T", bound="JsonConfig")
_SIMPLE_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _simple_type_ok(ftype, value) -> bool:
    """Whether ``value`` (read from JSON) fits a field annotated ``int``, ``float``, ``str``,
    ``bool`` or a union of them with ``None``; other annotations are not checked here.

    >>> _simple_type_ok("int", 3), _simple_type_ok("int", "3"), _simple_type_ok("int", True)
    (True, False, False)
    >>> _simple_type_ok("float", 2), _simple_type_ok("int | None", None)
    (True, True)
    """
    options = [o.strip() for o in str(getattr(ftype, "__name__", ftype)).split("|")]
    if any(o not in _SIMPLE_TYPES and o != "None" for o in options):
        return True
    if value is None:
        return "None" in options
    return any(isinstance(value, _SIMPLE_TYPES[o]) and (o == "bool") == isinstance(value, bool)
               for o in options if o != "None")


class JsonConfig:
    """Mixin: ``to_dict``/``from_dict``/``save``/``load`` for (nested) frozen dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - set(fields)
        if unknown:
            raise ConfigError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
        kwargs = {}
        for name, value in data.items():
            ftype = fields[name].type
            if (str(getattr(ftype, "__name__", ftype)).startswith("int")
                    and isinstance(value, float) and value.is_integer()):
                value = int(value)  # 200.0 from another JSON writer is 200
            if not _simple_type_ok(ftype, value):
                raise ConfigError(f"{cls.__name__}.{name} must be {ftype}, got {value!r}")
            sub = _nested_config_type(cls, ftype)
            if sub is not None and isinstance(value, dict):
                value = sub.from_dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)

    def check_field_types(self) -> None:
        """ConfigError for a field whose value does not fit its simple annotation (int,
        float, str, bool, or one of them or None); for ``__post_init__``, so that a config
        built in Python fails where it is built, as one read from JSON does."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not _simple_type_ok(f.type, value):
                raise ConfigError(f"{type(self).__name__}.{f.name} must be {f.type}, "
                                  f"got {value!r}")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        return cls.from_dict(read_json(path))


MAX_JSON_BYTES = 16 << 20  # a config is a few KB; a 16 MB one is not a config


def read_json(path: str | Path, what: str = "config file") -> Any:
    """Parse a UTF-8 JSON file; MissingFileError, or ConfigError naming the file for invalid,
    oversized or absurdly nested JSON (Python's parser recurses: 100,000 brackets deep is a
    RecursionError, not a config)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} not found", path=path)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ConfigError(f"{what} is {path.stat().st_size} bytes, too large for a config",
                          path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} is not valid UTF-8 JSON ({exc})", path=path) from exc
    except RecursionError as exc:
        raise ConfigError(f"{what} is nested too deeply to be a config", path=path) from exc


def _nested_config_type(owner: type, annotation: Any) -> type | None:
    """Resolve a string annotation naming another JsonConfig dataclass, if it does."""
    if isinstance(annotation, str):
        import sys

        annotation = getattr(sys.modules[owner.__module__], annotation, None)
    if isinstance(annotation, type) and issubclass(annotation, JsonConfig):
        return annotation
    return None


@dataclasses.dataclass(frozen=True)
class MelConfig(JsonConfig):
    """The one set of numbers that defines the log-mel front end (DESIGN §3)."""

    sample_rate_hz: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin_hz: float = 0.0
    fmax_hz: float = 8000.0
    log_floor: float = 1e-5
    f0_min_hz: float = 65.0
    f0_max_hz: float = 600.0

    def __post_init__(self) -> None:
        if self.sample_rate_hz <= 0:
            raise ConfigError(f"sample_rate_hz must be positive, got {self.sample_rate_hz}")
        if self.win_length > self.n_fft:
            raise ConfigError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if not 0 < self.hop_length <= self.win_length:
            raise ConfigError(f"hop_length must be in (0, win_length], got {self.hop_length}")
        if not 0 <= self.fmin_hz < self.fmax_hz <= self.sample_rate_hz / 2:
            raise ConfigError(
                f"need 0 <= fmin_hz < fmax_hz <= Nyquist, got {self.fmin_hz}, {self.fmax_hz}"
            )
        if self.n_mels <= 0 or self.log_floor <= 0:
            raise ConfigError("n_mels and log_floor must be positive")
        if not 0 < self.f0_min_hz < self.f0_max_hz:
            raise ConfigError("need 0 < f0_min_hz < f0_max_hz")

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate_hz / self.hop_length


VOCODERS = ("auto", "universal", "fast", "griffin-lim")
MAX_LENGTH_SCALE = 10.0
MAX_PITCH_SHIFT = 24.0  # semitones: two octaves either way


# Limits past which an output is damage, not speech, checked by the torch path and the runtime
# alike: |log(frames + 1)| beyond 20 (half a billion frames) is no duration prediction, and a
# natural-log mel of real sound lies within about [-12, 6].
MAX_LOG_DURATION = 20.0
MAX_ABS_LOG_MEL = 100.0


@dataclasses.dataclass(frozen=True)
class SynthesisConfig(JsonConfig):
    """How to speak: ``length_scale`` (>1 slower), ``pitch_shift`` (semitones),
    ``energy_scale`` and ``vocoder`` (auto | universal | fast | griffin-lim). ``None`` means "the
    voice's default" (see :meth:`over`); a value outside the range the model can speak is a
    ConfigError where the config is made.

    >>> SynthesisConfig(length_scale=1.2).over(SynthesisConfig.neutral())
    SynthesisConfig(length_scale=1.2, pitch_shift=0.0, energy_scale=1.0, vocoder='auto')
    >>> try:
    ...     SynthesisConfig(energy_scale=-5)
    ... except ConfigError as err:
    ...     print(err.message)
    energy_scale is -5, must be above 0
    """

    length_scale: float | None = None
    pitch_shift: float | None = None
    energy_scale: float | None = None
    vocoder: str | None = None

    def __post_init__(self) -> None:
        self.check_field_types()
        for name in ("length_scale", "pitch_shift", "energy_scale"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(float(value)):
                raise ConfigError(f"{name} is {value}, must be a finite number",
                                  fix=f"pass a number for {name}")
        if self.length_scale is not None and not 0 < self.length_scale <= MAX_LENGTH_SCALE:
            raise ConfigError(f"length_scale is {self.length_scale:g}, must be above 0 and at "
                              f"most {MAX_LENGTH_SCALE:g}",
                              fix="use 1 for normal speed, 1.2 for slower")
        if self.pitch_shift is not None and abs(self.pitch_shift) > MAX_PITCH_SHIFT:
            raise ConfigError(f"pitch_shift is {self.pitch_shift:g} semitones, must be between "
                              f"-{MAX_PITCH_SHIFT:g} and {MAX_PITCH_SHIFT:g}",
                              fix="shift by a few semitones, e.g. -3 or 2")
        if self.energy_scale is not None and not self.energy_scale > 0:
            raise ConfigError(f"energy_scale is {self.energy_scale:g}, must be above 0",
                              fix="use 1 for normal loudness")
        if self.vocoder is not None and self.vocoder not in VOCODERS:
            raise ConfigError(f"unknown vocoder {self.vocoder!r}", fix=" | ".join(VOCODERS))

    @classmethod
    def neutral(cls) -> "SynthesisConfig":
        """The model as trained: normal speed, pitch and loudness, the best vocoder."""
        return cls(length_scale=1.0, pitch_shift=0.0, energy_scale=1.0, vocoder="auto")

    @classmethod
    def make(cls, config: "SynthesisConfig | None" = None, **knobs) -> "SynthesisConfig":
        """``config`` with the keyword knobs that are not None put over it; an unknown knob
        is a ConfigError."""
        if config is not None and not isinstance(config, SynthesisConfig):
            raise ConfigError(f"config must be a SynthesisConfig, not {type(config).__name__}",
                              fix="pass SynthesisConfig(...) or the settings as keywords")
        unknown = sorted(set(knobs) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown synthesis setting(s) {unknown}",
                              fix="length_scale | pitch_shift | energy_scale | vocoder")
        # numpy scalars and other real numbers count as the floats they are
        given = {k: float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool)
                 and k != "vocoder" else v for k, v in knobs.items() if v is not None}
        return dataclasses.replace(config or cls(), **given)

    def over(self, defaults: "SynthesisConfig") -> "SynthesisConfig":
        """This config with its ``None`` fields taken from ``defaults``."""
        return SynthesisConfig(**{f.name: getattr(defaults, f.name) if getattr(self, f.name)
                                  is None else getattr(self, f.name)
                                  for f in dataclasses.fields(self)})
