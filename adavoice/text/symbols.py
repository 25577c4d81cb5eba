"""The symbol table: token <-> id, saved in every model's ``config.json`` (DESIGN §8).

Id 0 is always the padding symbol (it doubles as the CTC blank for recognisers). The other ids
follow the order the pack lists its symbols in, so a table built twice from the same pack is
identical, and a table read back from a model is the one the model was trained with.

>>> table = SymbolTable.from_symbols(["a", "b", " "], language="xx")
>>> table.encode(["b", "a", " "])
[2, 1, 3]
>>> table.decode([2, 1, 3])
['b', 'a', ' ']
>>> SymbolTable.from_dict(table.to_dict()) == table
True
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from adavoice.errors import ConfigError, ModelFormatError, UnknownSymbolError

if TYPE_CHECKING:
    from adavoice.text.pack import LanguagePack

PAD = "<pad>"
SYMBOLS_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class SymbolTable:
    """An ordered, duplicate-free list of token strings; ``symbols[0]`` is :data:`PAD`.

    ``language`` and ``tokenizer`` record what the table was built for, so a model can rebuild
    the matching text front end from its own config. ``pack`` embeds the language pack itself
    (``LanguagePack.to_dict()``) for a language that is not installed, such as one made by
    ``adavoice lang new`` for a bootstrapped model, so the model carries its own front end.

    >>> from adavoice.text.pack import LanguagePack
    >>> table = SymbolTable.from_pack(LanguagePack.load("en"))
    >>> table.pad_id, table.symbols[0], "a" in table, table.language
    (0, '<pad>', True, 'en')
    >>> try:
    ...     table.encode(["a", "€"])
    ... except UnknownSymbolError as err:
    ...     print(err.message)
    symbol '€' (U+20AC) at position 1 is not in the en graphemes symbol table
    """

    symbols: tuple[str, ...]
    language: str = ""
    tokenizer: str = "graphemes"
    format_version: int = SYMBOLS_FORMAT_VERSION
    pack: dict | None = dataclasses.field(default=None, compare=False, hash=False, repr=False)
    _ids: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.symbols or self.symbols[0] != PAD:
            raise ConfigError(f"a symbol table must start with {PAD!r}")
        ids: dict[str, int] = {}
        for index, symbol in enumerate(self.symbols):
            if not isinstance(symbol, str) or not symbol:
                raise ConfigError(f"symbol {index} is not a non-empty string: {symbol!r}")
            if symbol in ids:
                raise ConfigError(f"symbol {symbol!r} is listed twice (ids {ids[symbol]}, {index})")
            ids[symbol] = index
        object.__setattr__(self, "_ids", ids)

    @classmethod
    def from_symbols(
        cls, symbols: Iterable[str], language: str = "", tokenizer: str = "graphemes"
    ) -> SymbolTable:
        """Build a table from tokens in order; the pad is prepended and repeats are skipped."""
        ordered = [PAD]
        seen = {PAD}
        for symbol in symbols:
            if symbol not in seen:
                ordered.append(symbol)
                seen.add(symbol)
        return cls(tuple(ordered), language=language, tokenizer=tokenizer)

    @classmethod
    def from_pack(cls, pack: LanguagePack, tokenizer: str | None = None) -> SymbolTable:
        """The table of ``pack``: word separator and punctuation first, then the alphabet
        (graphemes) or the stress marks, the phoneme inventory and every phoneme with each
        stress mark in front (phonemes). A stressed phoneme is one token: a stress mark alone has
        no sound, and as a token of its own it became a hub the aligner gave whole words to.
        A pack from outside the installed ``languages/`` is embedded in the table."""
        from adavoice.text.pack import default_packs_dir

        tokenizer = tokenizer or pack.tokenizer
        installed = pack.path is not None and \
            Path(pack.path).resolve().parent.parent == default_packs_dir()
        if tokenizer == "phonemes":
            stressed = tuple(mark + p for mark in pack.stress_marks for p in pack.phonemes)
            units: tuple[str, ...] = pack.stress_marks + pack.phonemes + stressed
        elif tokenizer == "graphemes":
            units = pack.alphabet
        else:
            raise ConfigError(f"unknown tokenizer {tokenizer!r}; use graphemes or phonemes")
        table = cls.from_symbols(pack.kept_punctuation + units, pack.code, tokenizer)
        return table if installed else dataclasses.replace(
            table, pack=pack.with_tokenizer(tokenizer).to_dict())

    @property
    def pad_id(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids

    def id_of(self, symbol: str) -> int | None:
        """The id of ``symbol``, or None when the table lacks it."""
        return self._ids.get(symbol)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token strings -> ids. An unknown token raises :class:`UnknownSymbolError` naming the
        token and its position in ``tokens``."""
        ids = []
        for position, token in enumerate(tokens):
            index = self._ids.get(token)
            if index is None:
                raise UnknownSymbolError(
                    f"symbol {_describe(token)} at position {position} is not in the "
                    f"{self.language or 'given'} {self.tokenizer} symbol table"
                )
            ids.append(index)
        return ids

    def decode(self, ids: Iterable[int], skip_pad: bool = True) -> list[str]:
        """Ids -> token strings (pads dropped unless ``skip_pad`` is False)."""
        tokens = []
        for position, index in enumerate(ids):
            index = int(index)
            if not 0 <= index < len(self.symbols):
                raise UnknownSymbolError(
                    f"id {index} at position {position} is outside the symbol table "
                    f"(0..{len(self.symbols) - 1})",
                    fix="decode with the symbol table saved with the model",
                )
            if index == 0 and skip_pad:
                continue
            tokens.append(self.symbols[index])
        return tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "language": self.language,
            "tokenizer": self.tokenizer,
            "symbols": list(self.symbols),
            **({"pack": self.pack} if self.pack is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SymbolTable:
        try:
            version = int(data.get("format_version", SYMBOLS_FORMAT_VERSION))
            symbols = tuple(data["symbols"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"symbol table is malformed ({exc!r})") from exc
        if version > SYMBOLS_FORMAT_VERSION:
            raise ModelFormatError(
                f"symbol table format_version {version} is newer than this adavoice supports",
                fix="upgrade adavoice",
            )
        return cls(
            symbols,
            language=str(data.get("language", "")),
            tokenizer=str(data.get("tokenizer", "graphemes")),
            format_version=version,
            pack=data.get("pack") if isinstance(data.get("pack"), dict) else None,
        )


def _describe(symbol: str) -> str:
    """``'x' (U+0078)`` for one code point, just the quoted string otherwise."""
    if len(symbol) == 1:
        return f"{symbol!r} (U+{ord(symbol):04X})"
    return repr(symbol)
