"""Sentences for synthetic corpora, from text the system already has (DESIGN §3).

English comes from the non-offensive ``fortunes`` package (``/usr/share/games/fortunes``,
never its ``off/`` folder) and from WordNet's example sentences; Czech, Slovak and Italian from
``fortunes-cs`` and ``fortunes-it``. Every sentence is filtered (3-20 words made only of the
language's letters, no digits, URLs, code, tabs, ALL CAPS, attributions or blocklisted words),
deduplicated case-folded, and returned in a deterministic order.

The train/valid split is by sentence: a sentence is ``valid`` when the SHA-1 of its normalised
form is divisible by 20, so every voice, every run and every seed agrees on it.

>>> split_sentences("It rained. Mr. Smith stayed home! Did he?")
['It rained.', 'Mr. Smith stayed home!', 'Did he?']
>>> clean_sentence("The cat sat on the mat.", "en")
'The cat sat on the mat.'
>>> clean_sentence("Call 555 1234 now, please.", "en") is None
True
>>> is_valid_sentence("The cat sat on the mat.") == is_valid_sentence("the CAT  sat on the mat.")
True
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from adavoice.errors import UnknownLanguageError

FORTUNE_ROOT = Path("/usr/share/games/fortunes")
WORDNET_ROOT = Path("/usr/share/wordnet")
BLOCKLIST_PATH = Path(__file__).with_name("blocklist.txt")
MIN_WORDS, MAX_WORDS = 3, 20
VALID_MODULUS = 20  # 1 sentence in 20 (5 %) is held out for validation

# Fortune files that are not prose (pictures) or whose jokes are about groups of people.
_EXCLUDED_FORTUNES = frozenset({"art", "ascii-art", "banner", "ethnic", "men-women"})
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs etc e.g i.e prof gen col sgt capt lt rev no fig p.s "
    "sv tzv tj atd apod např resp sig dott ecc".split()
)
_PUNCTUATION = ",.;:!?'-"
_ITALIAN_GRAVE = {"a": "à", "e": "è", "i": "ì", "o": "ò", "u": "ù",
                  "A": "À", "E": "È", "I": "Ì", "O": "Ò", "U": "Ù"}


@dataclass(frozen=True)
class TextSource:
    """Where a language's sentences come from and which letters its words may use."""

    language: str
    fortune_files: tuple[str, ...]  # paths relative to FORTUNE_ROOT; "*" = top-level English
    letters: str  # lower-case letters a word may contain (upper case is derived)
    wordnet: bool = False


_ASCII = "abcdefghijklmnopqrstuvwxyz"
SOURCES: dict[str, TextSource] = {
    "en": TextSource("en", ("*",), _ASCII, wordnet=True),
    "cs": TextSource("cs", ("cs/*",), _ASCII + "áčďéěíňóřšťúůýž"),
    "sk": TextSource("sk", ("cs/klasik-sk",), _ASCII + "áäčďéíĺľňóôŕšťúýž"),
    "it": TextSource("it", ("it/*",), _ASCII + "àèéìíîòóùú"),
}


def languages() -> list[str]:
    """Language codes that have a text source on this machine."""
    return sorted(SOURCES)


def source_for(language: str) -> TextSource:
    if language not in SOURCES:
        raise UnknownLanguageError(
            f"no text source for language {language!r}",
            fix=f"use one of {', '.join(languages())} (the languages with installed text sources)",
        )
    return SOURCES[language]


def normalise(sentence: str) -> str:
    """Case-folded, whitespace-collapsed form used for deduplication and the split."""
    return " ".join(unicodedata.normalize("NFC", sentence).casefold().split())


def sentence_key(sentence: str) -> str:
    """Stable 40-hex-digit key of a sentence (SHA-1 of its normalised form)."""
    return hashlib.sha1(normalise(sentence).encode("utf-8")).hexdigest()


def is_valid_sentence(sentence: str) -> bool:
    """True when the sentence belongs to the validation split (stable across runs and voices)."""
    return int(sentence_key(sentence), 16) % VALID_MODULUS == 0


def split_sentences(text: str) -> list[str]:
    """Split running text at . ! ? followed by white space, not after abbreviations/initials."""
    pieces, start = [], 0
    for match in re.finditer(r"([.!?]+[\"')\]»“”]*)\s+", text):
        words = text[start:match.start()].split()
        last = words[-1].lower().lstrip("\"'(") if words else ""
        initial = len(last) == 1 and last.isalpha()
        if match.group(1)[0] == "." and (last in _ABBREVIATIONS or initial):
            continue
        pieces.append(text[start:match.end(1)].strip())
        start = match.end()
    if text[start:].strip():
        pieces.append(text[start:].strip())
    return pieces


def clean_sentence(sentence: str, language: str) -> str | None:
    """The sentence tidied for speaking, or None when it fails a filter (see module doc)."""
    letters = source_for(language).letters
    text = unicodedata.normalize("NFC", sentence)
    text = re.sub(r"[\"“”„«»]", "", text).replace("’", "'").replace("‘", "'")
    text = re.sub(r"\s+[-–—]\s+", ", ", text)  # a spaced dash is a pause
    if language == "it":  # fortunes-it writes "e'" for "è", "perche'" for "perché"
        text = re.sub(r"([aeiouAEIOU])'(?=[\s,.;:!?]|$)",
                      lambda m: _ITALIAN_GRAVE[m.group(1)], text)
    text = re.sub(r"([!?])[.!?]+$", r"\1", " ".join(text.split()))
    if "--" in text or not text or not text[0].isupper() or text[-1] not in ".!?":
        return None
    allowed = set(letters) | set(letters.upper()) | set(_PUNCTUATION) | {" "}
    if any(ch not in allowed for ch in text):
        return None  # digits, URLs, code, brackets, symbols, foreign letters
    word_re = re.compile(rf"^[{letters}]+(?:['-][{letters}]+)*'?$", re.IGNORECASE)
    words = [w.strip(_PUNCTUATION) for w in text.split()]
    words = [w for w in words if w]
    if not MIN_WORDS <= len(words) <= MAX_WORDS or not all(word_re.match(w) for w in words):
        return None
    shouting = sum(1 for w in words if len(w) > 1 and w.isupper())
    if shouting >= 2 or shouting > len(words) // 3:
        return None
    if any(_blocked(w) for w in words):
        return None
    return text


@functools.lru_cache(maxsize=None)
def _blocklist() -> tuple[frozenset[str], tuple[str, ...]]:
    """(whole words, prefixes) from blocklist.txt; a trailing ``*`` marks a prefix."""
    words, prefixes = set(), []
    for line in BLOCKLIST_PATH.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip().casefold()
        if entry.endswith("*"):
            prefixes.append(entry[:-1])
        elif entry:
            words.add(entry)
    return frozenset(words), tuple(prefixes)


def _blocked(word: str) -> bool:
    words, prefixes = _blocklist()
    folded = word.casefold()
    return folded in words or folded.startswith(prefixes)


def read_fortune_records(path: Path) -> list[str]:
    """The speakable body of each ``%``-separated record: attribution lines (``-- Name``) and
    what follows them are dropped; records with tab-indented lines (tables, code, dialogue
    layouts) or undecodable bytes are skipped; overstrike (``_\\b``) is removed."""
    records = []
    for raw in re.split(rb"\n%\n", path.read_bytes()):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        text = re.sub(r".\x08", "", text)
        lines = []
        for line in text.splitlines():
            if re.match(r"^\s*(--|—|―)", line):
                break
            lines.append(line)
        if any("\t" in line for line in lines):
            continue
        body = " ".join(line.strip() for line in lines if line.strip() and line.strip() != "%")
        if body:
            records.append(body)
    return records


def _fortune_paths(source: TextSource) -> list[Path]:
    paths: list[Path] = []
    for pattern in source.fortune_files:
        if pattern == "*":  # English: regular top-level files; symlinks there point to it/
            candidates = [p for p in FORTUNE_ROOT.iterdir() if p.is_file() and not p.is_symlink()]
        else:
            candidates = [p for p in FORTUNE_ROOT.glob(pattern) if p.is_file()]
        for path in candidates:
            if path.suffix in (".dat", ".u8") or path.name in _EXCLUDED_FORTUNES:
                continue
            if source.language == "cs" and path.name == "klasik-sk":
                continue
            if "off" in path.relative_to(FORTUNE_ROOT).parts:
                continue
            paths.append(path)
    return sorted(paths)


def wordnet_examples(root: Path = WORDNET_ROOT) -> list[str]:
    """Quoted example sentences from WordNet glosses (``data.noun`` etc.), capitalised and
    given a final full stop."""
    examples = []
    for part in ("noun", "verb", "adj", "adv"):
        path = root / f"data.{part}"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" ") or " | " not in line:
                continue  # licence header
            for example in re.findall(r'"([^"]+)"', line.split(" | ", 1)[1]):
                example = example.strip().rstrip(";,: ")
                if example:
                    if example[-1] not in ".!?":
                        example += "."
                    examples.append(example[0].upper() + example[1:])
    return examples


@functools.lru_cache(maxsize=8)
def load_sentences(language: str) -> tuple[str, ...]:
    """Every usable sentence for ``language``, filtered, deduplicated (case-folded) and sorted."""
    source = source_for(language)
    candidates: list[str] = []
    for path in _fortune_paths(source):
        for record in read_fortune_records(path):
            candidates.extend(split_sentences(record))
    if source.wordnet:
        candidates.extend(wordnet_examples())
    unique: dict[str, str] = {}
    for candidate in candidates:
        cleaned = clean_sentence(candidate, language)
        if cleaned is not None:
            unique.setdefault(normalise(cleaned), cleaned)
    return tuple(sorted(unique.values()))


def shuffled_sentences(language: str, seed: int) -> list[str]:
    """``load_sentences`` in a seeded random order: same seed, same order."""
    sentences = list(load_sentences(language))
    random.Random(seed).shuffle(sentences)
    return sentences
