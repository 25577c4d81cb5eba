"""Text front end: language packs, normalisation, tokenisation and the symbol table.

>>> from adavoice.text import TextProcessor
>>> TextProcessor.from_language("it").process("Ho 3 gatti.").normalized
'ho tre gatti.'
"""

from adavoice.text.normalize import NormalizedText, TextNormalizer, TextWarning, normalize_text
from adavoice.text.pack import LanguagePack, available_codes, available_packs, default_packs_dir
from adavoice.text.symbols import PAD, SymbolTable
from adavoice.text.tokenize import (
    ProcessedText,
    TextProcessor,
    espeak_phonemize,
    grapheme_tokens,
    has_letters,
    phoneme_tokens,
)

__all__ = [
    "PAD",
    "LanguagePack",
    "NormalizedText",
    "ProcessedText",
    "SymbolTable",
    "TextNormalizer",
    "TextProcessor",
    "TextWarning",
    "available_codes",
    "available_packs",
    "default_packs_dir",
    "espeak_phonemize",
    "grapheme_tokens",
    "has_letters",
    "normalize_text",
    "phoneme_tokens",
]
