"""Intelligibility metrics: character and word error rates of a recogniser's transcript.

Both strings are normalised first (Unicode NFKC, case folded, apostrophes dropped, other
punctuation and symbols turned into spaces, whitespace collapsed), so that "Hello, World!"
and "hello world" count as the same words. Rates are computed by jiwer (Levenshtein distance
over characters or words, divided by the reference length), so they can exceed 1.

>>> round(cer("The cat sat.", "the bat sat"), 4)    # 1 substitution / 11 characters
0.0909
>>> wer("The cat sat.", "the bat sat")
0.3333333333333333
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from adavoice.errors import EmptyTranscriptError

_APOSTROPHES = "'\u2019\u02bc"
_SPACES = re.compile(r"\s+")


@runtime_checkable
class Recognizer(Protocol):
    """Anything that turns audio into text: ``recognizer(samples, sample_rate_hz) -> str``.

    ``samples`` is mono float32 in [-1, 1], shape (T_samples,). adavoice's CTC ASR, a
    wrapped wav2vec2 model or a plain function all qualify.

    >>> def silent(samples, sample_rate_hz):
    ...     return ""
    >>> isinstance(silent, Recognizer)
    True
    """

    def __call__(self, samples: np.ndarray, sample_rate_hz: int) -> str: ...


def normalize_text(text: str) -> str:
    """Case-fold and strip punctuation so error rates count words, not typography.

    >>> normalize_text("  Don't  STOP -- now!")
    'dont stop now'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    for mark in _APOSTROPHES:
        text = text.replace(mark, "")
    kept = [
        " " if unicodedata.category(ch)[0] in "PSZ" or ch.isspace() else ch for ch in text
    ]
    return _SPACES.sub(" ", "".join(kept)).strip()


def _prepare(
    references: str | Sequence[str], hypotheses: str | Sequence[str]
) -> tuple[list[str], list[str]]:
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    refs = [normalize_text(r) for r in refs]
    hyps = [normalize_text(h) for h in hyps]
    for index, ref in enumerate(refs):
        if not ref:
            raise EmptyTranscriptError(
                f"reference transcript {index} is empty after normalisation; "
                "error rates need reference words"
            )
    return refs, hyps


def cer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Character error rate (spaces count as characters), pooled over all pairs.

    Raises EmptyTranscriptError when a reference has no characters left after normalising.
    """
    import jiwer

    refs, hyps = _prepare(references, hypotheses)
    return float(jiwer.cer(refs, hyps))


def wer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Word error rate, pooled over all pairs (total edits / total reference words)."""
    import jiwer

    refs, hyps = _prepare(references, hypotheses)
    return float(jiwer.wer(refs, hyps))


def transcribe_and_score(
    recognizer: Recognizer, samples: np.ndarray, sample_rate_hz: int, reference: str
) -> dict[str, float | str]:
    """Run the recogniser once and score it: ``{"transcript", "cer", "wer"}``.

    >>> transcribe_and_score(lambda s, sr: "hello word", np.zeros(10), 16000, "Hello world")["wer"]
    0.5
    """
    transcript = str(recognizer(samples, sample_rate_hz))
    return {
        "transcript": transcript,
        "cer": cer(reference, transcript),
        "wer": wer(reference, transcript),
    }
