"""Text normalisation: from what people type to what a language pack can spell.

Steps, in order: Unicode NFC; numbers spoken as words through num2words (cardinals, decimals,
digit grouping, English ordinals such as ``3rd``); symbols the pack spells out (``%``);
typographic quotes, dashes and brackets mapped to the pack's punctuation; lowercase; letters
outside the alphabet folded to their base letter when the pack has it (``é`` -> ``e`` in
English) and otherwise dropped; whitespace collapsed. Every fold or drop is reported with the
character and its position (an index into the NFC text), never silently.

>>> from adavoice.text.pack import LanguagePack
>>> result = normalize_text("I have 3 “cats” — really…", LanguagePack.load("en"), emit=False)
>>> result.text
'i have three cats - really.'
>>> normalize_text("Mám 3 kočky.", LanguagePack.load("cs")).text
'mám tři kočky.'
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
import warnings
from decimal import Decimal, InvalidOperation

from adavoice.text.pack import WORD_SEPARATOR, LanguagePack

# Typographic and ASCII marks -> the mark they stand for. A target the pack does not keep
# becomes a word break; an empty target removes the mark (quotes carry no sound).
PUNCTUATION_MAP: dict[str, str] = {
    **dict.fromkeys("‘’‚‛`´′ʼ", "'"),
    **dict.fromkeys("\"“”„‟«»‹›″", ""),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    **dict.fromkeys(";:()[]{}", ","),
    "…": ".",
    **dict.fromkeys("¿¡", ""),
    "/": " ",
    "_": " ",
    # Invisible format characters: zero-width spaces and joiners, BOM, soft hyphen.
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad", ""),
}
_FLOAT_SAFE_DIGITS = 15
# Combining diacritics stay with their base letter, so a pack may list letters that have no
# precomposed form (a base plus marks) and still get them as one character.
_COMBINING_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_SPACE_BEFORE_MARK = re.compile(r" +(?=[,.?!])")
_REPEATED_MARK = re.compile(r"([,.?!'-])\1+")
_MARK_RUN = re.compile(r"[,.?!]{2,}")
_LEADING_JUNK = re.compile(r"^[\s,.?!'-]+")
_MARK_BEFORE_WORD = re.compile(r"([,.?!])(?=\w)")


class TextWarning(UserWarning):
    """A character was folded or dropped during normalisation or tokenisation."""


@dataclasses.dataclass(frozen=True)
class NormalizedText:
    """The normalised string plus one message per character that was folded or dropped."""

    text: str
    warnings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TextNormalizer:
    """Normalises text for one :class:`LanguagePack`; reusable and side-effect free.

    >>> from adavoice.text.pack import LanguagePack
    >>> normalizer = TextNormalizer(LanguagePack.load("it"))
    >>> normalizer("Ho 3 gatti, 21 cani e 2,5 litri!").text
    'ho tre gatti, ventuno cani e due virgola cinque litri!'
    >>> normalizer("Prezzo: 10€").warnings
    ("unknown character '€' (U+20AC) at position 10 dropped",)
    """

    pack: LanguagePack
    _pattern: re.Pattern = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        decimal = re.escape(self.pack.decimal_separator)
        group = re.escape(self.pack.group_separator)
        grouped = rf"\d{{1,3}}(?:{group}\d{{3}}(?!\d))+"  # 1,000,000 (en) or 1.000.000 (cs)
        number = rf"{grouped}(?:{decimal}\d+)?|\d+(?:{decimal}\d+)?"
        alternatives = []
        if self.pack.ordinal_suffixes:
            suffixes = "|".join(re.escape(s) for s in self.pack.ordinal_suffixes)
            alternatives.append(rf"(?P<ordinal>\d+)(?:{suffixes})\b")
        alternatives += [rf"(?P<number>{number})", rf"(?P<char>.[{_COMBINING_MARKS}]*)"]
        pattern = re.compile("|".join(alternatives), re.DOTALL | re.IGNORECASE)
        object.__setattr__(self, "_pattern", pattern)

    def __call__(self, text: str) -> NormalizedText:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        text = unicodedata.normalize("NFC", text)
        notes: list[str] = []
        pieces: list[str] = []
        for match in self._pattern.finditer(text):
            position = match.start()
            if match.group("char") is not None:
                pieces.append(self._char(match.group("char"), position, notes))
                continue
            if self.pack.ordinal_suffixes and match.group("ordinal") is not None:
                words = self._number_words(match.group("ordinal"), position, notes, "ordinal")
            else:
                words = self._number_words(match.group("number"), position, notes, "cardinal")
            spelled = "".join(self._char(c, position, notes, source=words) for c in words)
            pieces.append(f" {spelled} ")
        return NormalizedText(_tidy("".join(pieces)), tuple(notes))

    def _char(self, char: str, position: int, notes: list[str], source: str = "") -> str:
        """One input character -> its normalised spelling ('' when dropped)."""
        pack = self.pack
        if char.isspace() and len(char) == 1:
            return WORD_SEPARATOR
        if char in pack.symbol_words and not source:
            word = pack.symbol_words[char]
            return f" {''.join(self._char(c, position, notes, source=word) for c in word)} "
        if char in PUNCTUATION_MAP:
            target = PUNCTUATION_MAP[char]
            if target in ("", WORD_SEPARATOR) or target in pack.punctuation:
                return target
            return WORD_SEPARATOR
        lowered = unicodedata.normalize("NFC", char.lower())
        if lowered in pack.alphabet or lowered in pack.punctuation:
            return lowered
        where = f"at position {position}" + (f" (in {source!r})" if source else "")
        base = _strip_marks(lowered)
        if base and all(c in pack.alphabet for c in base):
            notes.append(f"character {_show(char)} {where} replaced by {base!r}")
            return base
        notes.append(f"unknown character {_show(char)} {where} dropped")
        return WORD_SEPARATOR if char in "-+*=<>|\\~^" else ""

    def _number_words(self, digits: str, position: int, notes: list[str], kind: str) -> str:
        """Spell a number with num2words; fall back to digit by digit when it cannot."""
        pack = self.pack
        plain = digits.replace(pack.group_separator, "") if pack.group_separator else digits
        plain = plain.replace(pack.decimal_separator, ".")
        try:
            # Short decimals go in as floats: some num2words languages (it) ignore the
            # fraction of a Decimal; long ones stay Decimal so that no digit is lost.
            value: int | float | Decimal = int(plain) if "." not in plain else (
                float(plain) if len(plain) <= _FLOAT_SAFE_DIGITS else Decimal(plain))
        except (ValueError, InvalidOperation):
            value = int(re.sub(r"\D", "", plain) or 0)
        spelled = _num2words(value, pack.num2words_lang, kind)
        if spelled is None and kind == "ordinal":
            notes.append(f"ordinal {digits!r} at position {position} read as a cardinal")
            spelled = _num2words(value, pack.num2words_lang, "cardinal")
        if spelled is None:
            notes.append(f"number {digits!r} at position {position} read digit by digit")
            words = [_num2words(int(d), pack.num2words_lang, "cardinal") or "" for d in plain
                     if d.isdigit()]
            spelled = " ".join(words)
        # num2words writes English thousands groups with commas; they are not pauses.
        return re.sub(r"\s+", " ", spelled.replace(",", " ")).strip().lower()


def _num2words(value: int | float | Decimal, lang: str, kind: str) -> str | None:
    from num2words import num2words  # imported lazily: only text front ends need it

    try:
        return str(num2words(value, lang=lang, to=kind))
    except (NotImplementedError, OverflowError, ValueError, TypeError, ArithmeticError):
        return None


def _strip_marks(text: str) -> str:
    """Remove combining marks: 'é' -> 'e', 'ø' stays 'ø' (no decomposition)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _show(char: str) -> str:
    return f"{char!r} (U+{ord(char):04X})" if len(char) == 1 else repr(char)


def _tidy(text: str) -> str:
    """Collapse whitespace, glue punctuation to the word before it, drop repeats and edges."""
    text = " ".join(text.split())
    text = _SPACE_BEFORE_MARK.sub("", text)
    text = _MARK_BEFORE_WORD.sub(r"\1 ", text)
    text = _REPEATED_MARK.sub(r"\1", text)
    text = _MARK_RUN.sub(_merge_marks, text)
    text = _LEADING_JUNK.sub("", text)
    return text.rstrip()


def _merge_marks(match: re.Match) -> str:
    """A run of mixed marks (from ``…)`` or ``?!``) -> ``?!``-style runs stay, else the
    strongest mark: the last full stop, question or exclamation mark, or a comma."""
    run = match.group(0)
    if set(run) <= {"?", "!"}:
        return run
    enders = [mark for mark in run if mark != ","]
    return enders[-1] if enders else ","


def normalize_text(text: str, pack: LanguagePack, emit: bool = True) -> NormalizedText:
    """Normalise ``text`` for ``pack``; with ``emit`` each note is also a :class:`TextWarning`."""
    result = TextNormalizer(pack)(text)
    if emit:
        for note in result.warnings:
            warnings.warn(note, TextWarning, stacklevel=2)
    return result
