"""CTC prefix beam search with an optional character n-gram language model.

Greedy decoding takes the best token per step; a prefix beam keeps the ``beam`` best label
sequences, summing the probability of every path that collapses to each (blank and non-blank
endings tracked apart). With ``lm`` the score of a prefix is
``log P_ctc + alpha * log P_lm + beta * length``: the LM is a character n-gram with Witten-Bell
interpolation, trained on the language's own text (a bootstrap has thousands of unpaired
sentences), so it knows which letter sequences the language writes.

>>> lm = CharNgram.train(["abab", "abba"], order=3)
>>> lm.log_prob("ab", "a") > lm.log_prob("ab", "c")
True
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

NEG_INF = -math.inf


def _logsumexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    top = max(a, b)
    return top + math.log(math.exp(a - top) + math.exp(b - top))


class CharNgram:
    """A character n-gram with Witten-Bell interpolation down to a uniform distribution over
    the characters seen (plus the end of text)."""

    END = "\n"

    def __init__(self, order: int, counts: dict, followers: dict, vocabulary: set[str]):
        self.order, self.counts, self.followers = order, counts, followers
        self.vocabulary = vocabulary | {self.END}
        self._cache: dict[tuple[str, str], float] = {}

    @classmethod
    def train(cls, lines, order: int = 5) -> "CharNgram":
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        vocabulary: set[str] = set()
        for line in lines:
            text = line + cls.END
            vocabulary.update(line)
            for i, char in enumerate(text):
                for n in range(order):  # contexts of length 0 .. order-1
                    if i - n < 0:
                        break
                    counts[text[i - n:i]][char] += 1
        frozen = {k: dict(v) for k, v in counts.items()}
        followers = {k: (sum(v.values()), len(v)) for k, v in frozen.items()}
        return cls(order, frozen, followers, vocabulary)

    # ---- I/O: plain JSON (never a pickle) ------------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": "adavoice-char-ngram", "order": self.order,
                "vocabulary": sorted(self.vocabulary - {self.END}), "counts": self.counts}

    @classmethod
    def from_dict(cls, data: dict, path=None) -> "CharNgram":
        from adavoice.errors import ModelFormatError

        try:
            if data.get("kind") != "adavoice-char-ngram":
                raise ValueError(f"kind {data.get('kind')!r}")
            order = int(data["order"])
            counts = {str(k): {str(c): int(n) for c, n in v.items()}
                      for k, v in data["counts"].items()}
            vocabulary = {str(c) for c in data["vocabulary"]}
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"not a character n-gram ({exc})", path=path,
                                   fix="rebuild it: adavoice.models.ctc_decode.CharNgram.train"
                                   ) from exc
        followers = {k: (sum(v.values()), len(v)) for k, v in counts.items()}
        return cls(order, counts, followers, vocabulary)

    def save(self, path) -> None:
        import json

        from adavoice.atomic import atomic_write_bytes

        atomic_write_bytes(path, json.dumps(self.to_dict(), ensure_ascii=False).encode())

    @classmethod
    def load(cls, path) -> "CharNgram":
        from adavoice.config import read_json

        return cls.from_dict(read_json(path, what="character n-gram"), path)

    def log_prob(self, context: str, char: str) -> float:
        key = (context[-(self.order - 1):] if self.order > 1 else "", char)
        if key not in self._cache:
            self._cache[key] = math.log(max(self._prob(key[0], char), 1e-12))
        return self._cache[key]

    def _prob(self, context: str, char: str) -> float:
        lower = 1.0 / len(self.vocabulary) if not context else self._prob(context[1:], char)
        seen = self.counts.get(context)
        if not seen:
            return lower
        total, types = self.followers[context]
        return (seen.get(char, 0) + types * lower) / (total + types)


def prefix_beam_search(log_probs: np.ndarray, symbols: list[str], beam: int = 8,
                       lm: CharNgram | None = None, alpha: float = 0.5, beta: float = 1.0,
                       blank: int = 0, prune: float = -8.0) -> list[int]:
    """Best token ids for one utterance's (T, V) log-probabilities. Tokens whose log-prob at a
    step is under ``prune`` (and not the step's best) are not extended."""
    # prefix (tuple of ids) -> (log P ending in blank, log P ending in non-blank)
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, NEG_INF)}
    lm_score: dict[tuple, float] = {(): 0.0}

    def text_of(prefix: tuple) -> str:
        return "".join(symbols[i] for i in prefix)

    for step in log_probs:
        best = int(step.argmax())
        candidates = [v for v in range(len(step)) if step[v] >= prune or v == best]
        fresh: dict[tuple, list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (p_blank, p_label) in beams.items():
            p_total = _logsumexp(p_blank, p_label)
            for v in candidates:
                p = float(step[v])
                if v == blank:
                    entry = fresh[prefix]
                    entry[0] = _logsumexp(entry[0], p_total + p)
                    continue
                extended = prefix + (v,)
                entry = fresh[extended]
                if prefix and prefix[-1] == v:  # a repeat needs a blank between
                    entry[1] = _logsumexp(entry[1], p_blank + p)
                    same = fresh[prefix]
                    same[1] = _logsumexp(same[1], p_label + p)
                else:
                    entry[1] = _logsumexp(entry[1], p_total + p)
                if extended not in lm_score:
                    lm_score[extended] = lm_score[prefix] + (
                        lm.log_prob(text_of(prefix), symbols[v]) if lm is not None else 0.0)

        def score(item) -> float:
            prefix, (p_blank, p_label) = item
            return (_logsumexp(p_blank, p_label) + alpha * lm_score[prefix]
                    + beta * len(prefix) * (lm is not None))

        beams = dict(sorted(((k, tuple(v)) for k, v in fresh.items()), key=score,
                            reverse=True)[:beam])

    def final(item) -> float:
        prefix, (p_blank, p_label) = item
        end = lm.log_prob(text_of(prefix), CharNgram.END) if lm is not None else 0.0
        return (_logsumexp(p_blank, p_label) + alpha * (lm_score[prefix] + end)
                + beta * len(prefix) * (lm is not None))

    return list(max(beams.items(), key=final)[0])
