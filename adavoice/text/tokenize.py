"""Text -> tokens -> ids for one language pack: graphemes, or IPA phonemes from espeak-ng.

Graphemes are the letters of the normalised text (a base letter with any combining marks), the
word separator and the kept punctuation; this is the default, because the aligner learns
durations for any language without a pronunciation dictionary. Phonemes come from espeak-ng
(``espeak-ng -q --ipa --sep=_``): one token per espeak phoneme (``tʃ``, ``oʊ``), a stress mark
joined to the phoneme after it (``ˈoʊ``) when the symbol table has that token (tables of models
trained before stressed tokens keep the mark as a token of its own), words separated by spaces and
the pack's punctuation kept where it was.

>>> processor = TextProcessor.from_language("en")
>>> out = processor.process("Hello 2!")
>>> out.normalized, "".join(out.tokens), len(out.ids) == len(out.tokens)
('hello two!', 'hello two!', True)
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import unicodedata
import warnings
from pathlib import Path
from typing import Iterable

from adavoice.errors import (
    ConfigError,
    EmptyTextError,
    EngineError,
    UnknownVoiceError,
)
from adavoice.text.normalize import TextNormalizer, TextWarning
from adavoice.text.pack import WORD_SEPARATOR, LanguagePack
from adavoice.text.symbols import SymbolTable

ESPEAK_TIMEOUT_S = 60.0
ESPEAK_PHONEME_SEPARATOR = "_"
# espeak-ng marks words it reads in another language as "(en)...(it)"; the marks are not sounds.
_LANGUAGE_SWITCH = re.compile(r"\([a-z][a-z0-9-]*\)")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclasses.dataclass(frozen=True)
class ProcessedText:
    """One utterance through the front end. ``tokens[i]`` has id ``ids[i]``; ``warnings`` lists
    every character or phoneme that was folded or dropped, with its position."""

    normalized: str
    tokens: list[str]
    ids: list[int]
    warnings: list[str]


class TextProcessor:
    """Normalise, tokenise and encode text for one language pack.

    ``symbols`` defaults to the pack's own table; pass the table saved with a model to encode
    exactly as that model was trained. Tokens the table lacks are dropped with a warning.

    >>> cs = TextProcessor.from_language("cs")
    >>> out = cs.process("Mám 3 koně.")
    >>> out.normalized, out.tokens[:3]
    ('mám tři koně.', ['m', 'á', 'm'])
    >>> TextProcessor.from_symbols(cs.symbols).symbols == cs.symbols
    True
    """

    def __init__(
        self,
        pack: LanguagePack,
        tokenizer: str | None = None,
        symbols: SymbolTable | None = None,
        emit_warnings: bool = True,
    ):
        self.pack = pack if tokenizer is None else pack.with_tokenizer(tokenizer)
        self.tokenizer = self.pack.tokenizer
        self.symbols = symbols if symbols is not None else SymbolTable.from_pack(self.pack)
        if self.symbols.tokenizer != self.tokenizer:
            raise ConfigError(
                f"symbol table is for {self.symbols.tokenizer}, processor tokenises to "
                f"{self.tokenizer}", fix="build the processor with the model's own tokenizer",
            )
        self.emit_warnings = emit_warnings
        self.normalizer = TextNormalizer(self.pack)

    @classmethod
    def from_language(
        cls,
        code_or_path: str | Path,
        tokenizer: str | None = None,
        packs_dir: str | Path | None = None,
        **kwargs,
    ) -> TextProcessor:
        """Processor for an installed pack code (``"en"``) or a pack folder."""
        return cls(LanguagePack.load(code_or_path, packs_dir), tokenizer=tokenizer, **kwargs)

    @classmethod
    def from_symbols(
        cls, symbols: SymbolTable, packs_dir: str | Path | None = None, **kwargs
    ) -> TextProcessor:
        """Processor matching a model's saved symbol table (its language and tokenizer); a
        table that embeds its pack uses that pack, installed or not."""
        pack = (LanguagePack.from_dict(symbols.pack) if symbols.pack is not None
                else LanguagePack.load(symbols.language, packs_dir))
        return cls(pack, tokenizer=symbols.tokenizer, symbols=symbols, **kwargs)

    def process(self, text: str) -> ProcessedText:
        """Normalise, tokenise and encode one text. Raises :class:`EmptyTextError` when nothing
        speakable is left; unknown characters only produce warnings."""
        return self.process_many([text])[0]

    def process_many(self, texts: Iterable[str]) -> list[ProcessedText]:
        """:meth:`process` for many texts; phoneme packs call espeak-ng once for all of them."""
        normalized = []
        for text in texts:
            result = self.normalizer(text)
            if not has_letters(result.text, self.pack):
                if any(not c.isspace() and c not in self.pack.punctuation for c in text):
                    raise EmptyTextError(
                        f"nothing to speak in {_preview(text)}: its characters are not in the "
                        f"{self.pack.name} ({self.pack.code}) language pack's alphabet",
                        fix=f"write the text in {self.pack.name}, or use a model for its language")
                raise EmptyTextError(f"nothing to speak in {_preview(text)} after normalisation")
            normalized.append(result)
        if self.tokenizer == "phonemes":
            token_lists = phoneme_tokens([r.text for r in normalized], self.pack)
        else:
            token_lists = [grapheme_tokens(r.text) for r in normalized]
        return [self._encode(r.text, tokens, list(r.warnings))
                for r, tokens in zip(normalized, token_lists, strict=True)]

    def _encode(self, normalized: str, tokens: list[str], notes: list[str]) -> ProcessedText:
        if self.tokenizer == "phonemes":
            tokens = _join_stress(tokens, self.pack.stress_marks, self.symbols)
        kept: list[str] = []
        for position, token in enumerate(tokens):
            if token in self.symbols:
                kept.append(token)
            else:
                source = "espeak-ng phoneme" if self.tokenizer == "phonemes" else "symbol"
                notes.append(f"{source} {token!r} at token position {position} is not in the "
                             f"{self.symbols.language} {self.tokenizer} symbol table; dropped")
        kept = _tidy_tokens(kept, self.pack)
        if not any(t != WORD_SEPARATOR and t not in self.pack.punctuation for t in kept):
            raise EmptyTextError(f"no speakable tokens left in {_preview(normalized)}")
        if self.emit_warnings:
            for note in notes:
                warnings.warn(note, TextWarning, stacklevel=4)
        return ProcessedText(normalized, kept, self.symbols.encode(kept), notes)


def grapheme_tokens(text: str) -> list[str]:
    """Split into graphemes: each base character with the combining marks that follow it.

    >>> grapheme_tokens("ahoj, ře")
    ['a', 'h', 'o', 'j', ',', ' ', 'ř', 'e']
    """
    tokens: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        if tokens and unicodedata.combining(char):
            tokens[-1] += char
        else:
            tokens.append(char)
    return tokens


def has_letters(text: str, pack: LanguagePack) -> bool:
    """Whether ``text`` holds at least one letter of the pack's alphabet."""
    return any(grapheme in pack.alphabet for grapheme in grapheme_tokens(text))


def phoneme_tokens(texts: list[str], pack: LanguagePack) -> list[list[str]]:
    """Normalised texts -> espeak-ng phoneme tokens, keeping spaces and clause punctuation.

    >>> phoneme_tokens(["hello, two"], LanguagePack.load("en"))
    [['h', 'ə', 'l', 'ˈ', 'oʊ', ',', ' ', 't', 'ˈ', 'uː']]
    """
    clause_marks = [p for p in pack.punctuation if p not in ("'", "-")]
    mark = "|".join([re.escape(p) for p in clause_marks] + [r"(?:(?<=\s)|^)-(?=\s|$)"])
    splitter = re.compile(rf"({mark})")
    layouts: list[list[tuple[str, str]]] = []
    chunks: list[str] = []
    for text in texts:
        layout = []
        for piece in splitter.split(text):
            if not piece:
                continue
            if splitter.fullmatch(piece):
                layout.append(("mark", piece))
            else:
                layout.append(("text", piece))
                if has_letters(piece, pack):
                    chunks.append(piece.strip())
        layouts.append(layout)
    phonemised = iter(espeak_phonemize(chunks, pack.espeak_voice))
    results = []
    for layout in layouts:
        tokens: list[str] = []
        for kind, piece in layout:
            if kind == "mark":
                tokens.append(piece)
                continue
            if piece[:1].isspace():
                tokens.append(WORD_SEPARATOR)
            if has_letters(piece, pack):
                tokens.extend(_split_phonemes(next(phonemised), pack.stress_marks))
            if piece[-1:].isspace():
                tokens.append(WORD_SEPARATOR)
        results.append(_tidy_tokens(tokens, pack))
    return results


def espeak_phonemize(chunks: list[str], voice: str) -> list[str]:
    """``"p_h_o n_e_s"`` per chunk (each without clause punctuation): from espeak-ng's
    library in this process where it loads (adavoice.text.espeak_lib, the same output as the
    command), else one run of the command for all chunks, or a run per chunk if its
    paragraph breaks do not line up with the chunks."""
    if not chunks:
        return []
    from adavoice.text.espeak_lib import library

    lib = library()
    if lib is not None:  # in this process: one call a chunk, as fast as one for all
        return [" ".join(_library_phonemes(lib, chunk, voice).split()) for chunk in chunks]
    output = _run_espeak("\n\n".join(chunks), voice)
    groups = [g for g in _PARAGRAPH_BREAK.split(output.strip())]
    if len(groups) == len(chunks):
        return [" ".join(g.split()) for g in groups]
    return [" ".join(_run_espeak(chunk, voice).split()) for chunk in chunks]


def _library_phonemes(lib, text: str, voice: str) -> str:
    """:func:`_run_espeak`'s output, from the library in this process."""
    output = lib.phonemize(text, voice, ESPEAK_PHONEME_SEPARATOR)
    if output is None:
        raise UnknownVoiceError(f"espeak-ng has no voice {voice!r}",
                                fix="set espeak_voice in pack.json (espeak-ng --voices)")
    return _LANGUAGE_SWITCH.sub("", output)


def _run_espeak(text: str, voice: str) -> str:
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise EngineError("espeak-ng is not installed; the phoneme tokenizer needs it",
                          fix="install espeak-ng (make install-system) or use graphemes")
    command = [executable, "-q", "-b", "1", "--ipa", f"--sep={ESPEAK_PHONEME_SEPARATOR}",
               "-v", voice]
    try:
        # espeak-ng phonemises ~20k characters a second on one core; allow for 10x slower.
        timeout_s = ESPEAK_TIMEOUT_S + len(text) / 2000
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"espeak-ng took over {timeout_s:.0f} s") from exc
    message = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0 or "voice does not exist" in message:
        if "voice" in message.lower():
            raise UnknownVoiceError(f"espeak-ng has no voice {voice!r}: {message}",
                                    fix="set espeak_voice in pack.json (espeak-ng --voices)")
        raise EngineError(f"espeak-ng failed (exit {done.returncode}): {message}")
    return _LANGUAGE_SWITCH.sub("", done.stdout.decode("utf-8", "replace"))


def _split_phonemes(ipa: str, stress_marks: tuple[str, ...]) -> list[str]:
    """``"h_ə_l_ˈoʊ w_ˈɜː_l_d"`` -> phonemes with stress marks and spaces as tokens."""
    tokens: list[str] = []
    for index, word in enumerate(ipa.split()):
        if index:
            tokens.append(WORD_SEPARATOR)
        for phoneme in word.split(ESPEAK_PHONEME_SEPARATOR):
            core = phoneme
            leading = []
            while core and core[0] in stress_marks:
                leading.append(core[0])
                core = core[1:]
            trailing = []
            while core and core[-1] in stress_marks:
                trailing.append(core[-1])
                core = core[:-1]
            tokens.extend(leading + ([core] if core else []) + trailing)
    return tokens


def _join_stress(tokens: list[str], stress_marks: tuple[str, ...], symbols: SymbolTable
                 ) -> list[str]:
    """Join each stress mark to the token after it where ``symbols`` has the joined token.

    >>> table = SymbolTable.from_symbols(["ˈ", "a", "ˈa", "t"], "xx", "phonemes")
    >>> _join_stress(["t", "ˈ", "a", "ˈ", "t"], ("ˈ",), table)
    ['t', 'ˈa', 'ˈ', 't']
    """
    joined: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if (token in stress_marks and index + 1 < len(tokens)
                and token + tokens[index + 1] in symbols):
            joined.append(token + tokens[index + 1])
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


def _tidy_tokens(tokens: list[str], pack: LanguagePack) -> list[str]:
    """No doubled word separators, none at either end or just before punctuation."""
    tidy: list[str] = []
    for token in tokens:
        if token == WORD_SEPARATOR and (not tidy or tidy[-1] == WORD_SEPARATOR):
            continue
        if token in pack.punctuation and tidy and tidy[-1] == WORD_SEPARATOR and token != "-":
            tidy.pop()
        tidy.append(token)
    while tidy and tidy[-1] == WORD_SEPARATOR:
        tidy.pop()
    return tidy


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
