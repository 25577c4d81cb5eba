"""Language packs: the data that tells the front end how to read one language (DESIGN §2).

A pack is a folder ``languages/<code>/`` holding ``pack.json``. The repository's ``languages/``
folder is found next to the ``adavoice`` package; any other folder can be passed explicitly.

>>> pack = LanguagePack.load("cs")
>>> pack.code, pack.tokenizer, "ř" in pack.alphabet
('cs', 'graphemes', True)
>>> LanguagePack.from_dict(pack.to_dict()) == pack
True
"""

from __future__ import annotations

import dataclasses
import unicodedata
from pathlib import Path
from typing import Any

from adavoice.config import read_json
from adavoice.errors import ConfigError, UnknownLanguageError

PACK_FILE = "pack.json"
PACK_FORMAT_VERSION = 1
TOKENIZERS = ("graphemes", "phonemes")
WORD_SEPARATOR = " "


def default_packs_dir() -> Path:
    """The repository's ``languages/`` folder: a sibling of the ``adavoice`` package folder."""
    return Path(__file__).resolve().parent.parent.parent / "languages"


@dataclasses.dataclass(frozen=True)
class LanguagePack:
    """What the text front end needs to know about one language.

    ``alphabet`` lists the lowercase letters (NFC, diacritics included); ``punctuation`` the
    marks kept as tokens (the word separator, a space, is always kept as well); ``phonemes``
    the espeak-ng phoneme inventory used when ``tokenizer == "phonemes"``; ``symbol_words``
    spells out symbols such as ``%``; ``ordinal_suffixes`` (English ``st``, ``nd``...) mark
    digits read as ordinals; ``decimal_separator`` and ``group_separator`` say how numbers
    are written.

    >>> en = LanguagePack.load("en")
    >>> en.espeak_voice, en.num2words_lang, en.decimal_separator
    ('en-us', 'en', '.')
    >>> en.with_tokenizer("phonemes").tokenizer
    'phonemes'
    """

    code: str
    name: str
    espeak_voice: str
    num2words_lang: str
    tokenizer: str
    alphabet: tuple[str, ...]
    punctuation: tuple[str, ...]
    phonemes: tuple[str, ...] = ()
    stress_marks: tuple[str, ...] = ("ˈ", "ˌ")
    symbol_words: dict[str, str] = dataclasses.field(default_factory=dict)
    ordinal_suffixes: tuple[str, ...] = ()
    decimal_separator: str = "."
    group_separator: str = ","
    format_version: int = PACK_FORMAT_VERSION
    path: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        where = self.path
        if not self.code or not self.name:
            raise ConfigError("a language pack needs a code and a name", path=where)
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(
                f"tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}", path=where,
                fix="set \"tokenizer\" to \"graphemes\" or \"phonemes\" in pack.json",
            )
        if self.format_version > PACK_FORMAT_VERSION:
            raise ConfigError(
                f"pack format_version {self.format_version} is newer than this adavoice "
                f"({PACK_FORMAT_VERSION})", path=where, fix="upgrade adavoice",
            )
        for label, items in (("alphabet", self.alphabet), ("punctuation", self.punctuation)):
            if len(set(items)) != len(items):
                raise ConfigError(f"{label} lists a symbol twice", path=where)
            if any(not item or unicodedata.normalize("NFC", item) != item for item in items):
                raise ConfigError(f"{label} entries must be non-empty NFC strings", path=where)
        if self.decimal_separator == self.group_separator or not self.decimal_separator:
            raise ConfigError("decimal_separator must be set and differ from group_separator",
                              path=where)
        if set(self.alphabet) & set(self.punctuation) or WORD_SEPARATOR in self.alphabet:
            raise ConfigError("alphabet and punctuation overlap", path=where)
        if self.tokenizer == "phonemes" and not self.phonemes:
            raise ConfigError(
                "tokenizer is 'phonemes' but the pack lists no phonemes", path=where,
                fix="add the espeak-ng phoneme inventory as \"phonemes\" to pack.json",
            )

    def __hash__(self) -> int:  # symbol_words is a dict, so the generated hash would fail
        return hash((self.code, self.tokenizer, self.alphabet, self.punctuation, self.phonemes))

    @property
    def word_separator(self) -> str:
        return WORD_SEPARATOR

    @property
    def kept_punctuation(self) -> tuple[str, ...]:
        """Punctuation tokens plus the word separator, in a stable order."""
        extra = () if WORD_SEPARATOR in self.punctuation else (WORD_SEPARATOR,)
        return extra + self.punctuation

    def with_tokenizer(self, tokenizer: str) -> LanguagePack:
        """The same pack, tokenising to ``"graphemes"`` or ``"phonemes"``."""
        return dataclasses.replace(self, tokenizer=tokenizer)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("path")
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | Path | None = None) -> LanguagePack:
        names = {f.name for f in dataclasses.fields(cls)} - {"path"}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"pack.json has unknown field(s) {sorted(unknown)}", path=path)
        missing = {"code", "name", "espeak_voice", "num2words_lang", "tokenizer", "alphabet",
                   "punctuation"} - set(data)
        if missing:
            raise ConfigError(f"pack.json lacks field(s) {sorted(missing)}", path=path)
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs, path=None if path is None else str(path))

    @classmethod
    def from_file(cls, path: str | Path) -> LanguagePack:
        """Read one ``pack.json`` (or a pack folder holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / PACK_FILE
        data = read_json(path, what="language pack file")
        if not isinstance(data, dict):
            raise ConfigError("pack.json must hold a JSON object", path=path)
        return cls.from_dict(data, path=path)

    @classmethod
    def load(cls, code_or_path: str | Path, packs_dir: str | Path | None = None) -> LanguagePack:
        """Load a pack by language code (from ``packs_dir`` or the repository's ``languages/``)
        or from an explicit folder / ``pack.json`` path.

        >>> try:
        ...     LanguagePack.load("xx")
        ... except UnknownLanguageError as err:
        ...     print(err.message.split(";")[0])
        no language pack 'xx'
        """
        candidate = Path(code_or_path)
        looks_like_path = candidate.suffix == ".json" or len(candidate.parts) > 1
        if isinstance(code_or_path, Path) or looks_like_path:
            return cls.from_file(candidate)
        root = Path(packs_dir) if packs_dir is not None else default_packs_dir()
        pack_file = root / str(code_or_path) / PACK_FILE
        if not pack_file.is_file() and (candidate / PACK_FILE).is_file():
            return cls.from_file(candidate)  # a pack folder in the working directory
        if not pack_file.is_file():
            known = ", ".join(available_codes(root)) or "none"
            raise UnknownLanguageError(
                f"no language pack {str(code_or_path)!r}; installed: {known}"
            )
        pack = cls.from_file(pack_file)
        if pack.code != str(code_or_path):
            raise ConfigError(
                f"folder {code_or_path!r} holds a pack with code {pack.code!r}", path=pack_file,
                fix="make the folder name and the pack's \"code\" agree",
            )
        return pack


def available_codes(packs_dir: str | Path | None = None) -> list[str]:
    """Language codes with a ``pack.json`` under ``packs_dir`` (default: the repo's packs)."""
    root = Path(packs_dir) if packs_dir is not None else default_packs_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{PACK_FILE}"))


def available_packs(packs_dir: str | Path | None = None) -> list[LanguagePack]:
    """Every installed pack, sorted by code.

    >>> {"cs", "en", "it"} <= {p.code for p in available_packs()}
    True
    """
    root = Path(packs_dir) if packs_dir is not None else default_packs_dir()
    return [LanguagePack.load(code, root) for code in available_codes(root)]
