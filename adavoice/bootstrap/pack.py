"""`adavoice lang new`: a language pack made from the language's own text (DESIGN §7).

The alphabet is every letter the text uses (lower case, NFC). When espeak-ng knows the language
the pack names that voice and lists the phonemes espeak-ng gives for a sample of the text, and
its tokenizer is ``phonemes``; otherwise it is ``graphemes`` and needs nothing installed.
Numbers are spelt out by num2words when it knows the language.

>>> pack = new_pack("xx", ["Ahoj světe, jak se máš?", "Dobře."], espeak_voice="")
>>> pack.tokenizer, "ě" in pack.alphabet, pack.punctuation
('graphemes', True, (',', '.', '?', '!', "'", '-'))
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from adavoice.atomic import atomic_write_bytes
from adavoice.errors import ConfigError, DatasetError, EngineError, UnknownVoiceError
from adavoice.text.pack import PACK_FILE, LanguagePack

PUNCTUATION = (",", ".", "?", "!", "'", "-")
PHONEME_SAMPLE_LINES = 400  # lines phonemised to collect the inventory


def text_letters(lines: list[str]) -> dict[str, int]:
    """Lower-case NFC letters of ``lines`` with their counts."""
    counts: dict[str, int] = {}
    for line in lines:
        for char in unicodedata.normalize("NFC", line).lower():
            if unicodedata.category(char).startswith("L"):
                counts[char] = counts.get(char, 0) + 1
    return counts


def espeak_knows(code: str) -> bool:
    """Whether espeak-ng has a voice for ``code`` (its library or its command)."""
    from adavoice.text.tokenize import espeak_phonemize

    try:
        return bool(espeak_phonemize(["a"], code))
    except (UnknownVoiceError, EngineError):  # no such voice, or no engine at all
        return False


def _num2words_knows(code: str) -> bool:
    try:
        from num2words import num2words

        num2words(2, lang=code)
        return True
    except (NotImplementedError, ImportError, KeyError, TypeError):
        return False


def new_pack(code: str, lines: list[str], name: str | None = None,
             espeak_voice: str | None = None, tokenizer: str | None = None,
             min_count: int = 1) -> LanguagePack:
    """The pack of ``code`` from its text (see the module docstring). ``espeak_voice=None``
    uses ``code`` when espeak-ng knows it; ``""`` means no espeak. Letters seen fewer than
    ``min_count`` times (stray foreign names) are left out."""
    if not code or not code.replace("-", "").isalnum():
        raise ConfigError(f"a language code is letters and digits, got {code!r}")
    letters = {c: n for c, n in text_letters(lines).items() if n >= min_count}
    if len(letters) < 2:
        raise DatasetError(f"the text for {code!r} has {len(letters)} distinct letters; a "
                           f"language pack needs its text", fix="pass sentences of the language")
    if espeak_voice is None:
        espeak_voice = code if espeak_knows(code) else ""
    phonemes: tuple[str, ...] = ()
    if espeak_voice:
        phonemes = _phoneme_inventory(lines[:PHONEME_SAMPLE_LINES], espeak_voice)
    if tokenizer is None:
        tokenizer = "phonemes" if phonemes else "graphemes"
    if tokenizer == "phonemes" and not phonemes:
        raise ConfigError(f"espeak-ng does not know {code!r}, so the pack has no phonemes",
                          fix="use --tokenizer graphemes, or name an espeak voice")
    return LanguagePack(code=code, name=name or code, espeak_voice=espeak_voice,
                        num2words_lang=code if _num2words_knows(code) else "en",
                        tokenizer=tokenizer, alphabet=tuple(sorted(letters)),
                        punctuation=PUNCTUATION, phonemes=phonemes)


def _phoneme_inventory(lines: list[str], voice: str) -> tuple[str, ...]:
    from adavoice.text.tokenize import WORD_SEPARATOR, _split_phonemes, espeak_phonemize

    marks = ("ˈ", "ˌ")
    found: set[str] = set()
    chunks = [" ".join(line.split()) for line in lines if line.strip()]
    for ipa in espeak_phonemize(chunks, voice):
        found.update(t for t in _split_phonemes(ipa, marks) if t != WORD_SEPARATOR)
    return tuple(sorted(found - set(marks) - set(PUNCTUATION)))


def write_pack(pack: LanguagePack, packs_dir: str | Path) -> Path:
    """Write ``packs_dir/<code>/pack.json`` (atomically); returns the file."""
    path = Path(packs_dir) / pack.code / PACK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(pack.to_dict(), indent=2, ensure_ascii=False)
                              + "\n").encode("utf-8"))
    return path
