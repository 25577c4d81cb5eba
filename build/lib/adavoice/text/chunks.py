"""Long text in pieces a model can speak in one pass.

The acoustic model's self-attention grows with the square of the frames (60,000 characters in
one pass asked for 13.8 GB), so text is cut into pieces of at most ``MAX_CHARS_PER_PASS``
characters (~20 s of speech). Normalisation can multiply a piece's tokens (digits become
words), so a pass is also capped in tokens; a piece that is still longer (one 600-token
"word") is a TextTooLongError. No torch here: the runtime without torch cuts text the same way.
"""

from __future__ import annotations

import re

from adavoice.errors import EmptyTextError, TextTooLongError

MAX_CHARS_PER_PASS = 300
MAX_TOKENS_PER_PASS = 600
_CUTS = (r"(?<=[.!?;:])\s+", r"(?<=,)\s+", r"\s+")  # after sentence ends, commas, any space


def text_chunks(text: str, max_chars: int = MAX_CHARS_PER_PASS) -> list[str]:
    """``text`` in pieces of at most ``max_chars`` characters, cut after sentence ends, else
    after commas, else at spaces (a single longer word stays whole). Short text is one piece.

    >>> text_chunks("One. Two, three four.", max_chars=8)
    ['One.', 'Two,', 'three', 'four.']
    >>> text_chunks("Hello there.")
    ['Hello there.']
    """
    return _cut(" ".join(str(text).split()), max_chars, 0)


def _cut(text: str, max_chars: int, level: int) -> list[str]:
    if len(text) <= max_chars or level == len(_CUTS):
        return [text]
    chunks, current = [], ""
    for part in re.split(_CUTS[level], text):
        joined = f"{current} {part}" if current else part
        if len(joined) <= max_chars or not current:
            current = joined
        else:
            chunks.append(current)
            current = part
    chunks.append(current)
    return [piece for chunk in chunks for piece in _cut(chunk, max_chars, level + 1)]


def check_text(text) -> str:
    """``text`` if it is a string with something besides spaces, else EmptyTextError."""
    if not isinstance(text, str):
        raise EmptyTextError(f"the text must be a string, not {type(text).__name__}")
    if not text.strip():
        raise EmptyTextError("the text is empty")
    return text


def token_pieces(processor, text: str) -> list[list[int]]:
    """``text`` as token ids of one pass, or, when it is over ``MAX_CHARS_PER_PASS``
    characters or ``MAX_TOKENS_PER_PASS`` tokens, of several: its normalised form cut by
    :func:`text_chunks`, pieces with nothing to say skipped. EmptyTextError when nothing is
    left; TextTooLongError for a piece that cannot be cut small enough.

    >>> from adavoice.text import TextProcessor
    >>> processor = TextProcessor.from_language("en")
    >>> [len(ids) > 0 for ids in token_pieces(processor, "Hello. " * 100)]
    [True, True, True]
    """
    check_text(text)
    if len(text) <= MAX_CHARS_PER_PASS:
        ids = processor.process(text).ids
        if len(ids) <= MAX_TOKENS_PER_PASS:
            return [list(ids)]
    pieces, first_error = [], None
    for chunk in text_chunks(processor.normalizer(text).text):
        try:
            ids = processor.process(check_text(chunk)).ids
        except EmptyTextError as exc:  # a piece of only punctuation says nothing
            first_error = first_error or exc
            continue
        if len(ids) > MAX_TOKENS_PER_PASS:
            raise TextTooLongError(f"a piece of the text gives {len(ids)} tokens with no space "
                                   f"or punctuation to cut at (at most {MAX_TOKENS_PER_PASS}): "
                                   f"{chunk[:40]!r}...")
        pieces.append(list(ids))
    if not pieces:
        raise first_error
    return pieces
