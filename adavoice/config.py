"""Frozen, validated configuration dataclasses with JSON round-trip.

>>> cfg = MelConfig()
>>> MelConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import json
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


def read_json(path: str | Path, what: str = "config file") -> Any:
    """Parse a UTF-8 JSON file; MissingFileError or ConfigError (naming the file) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} not found", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} is not valid UTF-8 JSON ({exc})", path=path) from exc


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
