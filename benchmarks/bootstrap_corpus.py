"""Render the Czech (or Italian) data of the LRSpeech benchmark (issue 20, DESIGN §3, §7).

    python benchmarks/bootstrap_corpus.py --language cs --out data/bootstrap-cs

The paper's budget is 50 high-quality pairs of the target voice, ~1,000 low-quality
multi-speaker pairs, ~13,000 unpaired low-quality utterances and unpaired text. This script
keeps the 50 target pairs and scales the rest by 1/5 (the CPU budget of a 2-core machine):
50 / 198 / 2,598 plus 4,000 lines of unpaired text. Folders under ``--out``:

- ``paired``      the target voice, 50 train sentences + 40 held-out test sentences (valid split)
- ``low-quality`` six multi-speaker voices through sox channel damage (8 kHz band limit,
                  distortion, reverb), 33 sentences each, train only
- ``unpaired``    the same six damaged voices, 433 sentences each; the manifest keeps the text
                  the engine spoke, which the bootstrap never trains on and only uses to
                  measure its pseudo-labels
- ``eval``        the 40 test sentences by held-out voices (never trained on by anything here)
                  and by two of the low-quality voices (seen voices)
- ``full``        the full-resource set: the target voice and the clean multi-speaker voices,
                  400 sentences each; it trains the topline TTS and the frozen judge ASR
- ``unpaired-text.txt``  4,000 training-pool sentences

Test sentences are the corpus's shared valid sentences: their SHA-1 keeps them out of every
training pool of every build (``text_sources.is_valid_sentence``), whatever the seed.
Every build is resumable: run the same command again after an interruption.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adavoice.data.corpus.build import build_corpus
from adavoice.data.corpus.text_sources import is_valid_sentence, shuffled_sentences
from adavoice.errors import EngineError

DAMAGE = (
    "rate 8000 lowpass 3400 highpass 300 overdrive 6 gain -3",
    "rate 8000 lowpass 3000 highpass 250 overdrive 10 gain -4",
    "rate 8000 lowpass 3400 highpass 200 reverb 30 gain -2",
)
LANGUAGES = {
    "cs": {
        "target": "festival:czech_dita",
        "multi": ["espeak:cs", "espeak:cs+m3", "espeak:cs+f2", "espeak:cs+f4",
                  "espeak:cs+m7", "festival:czech_machac"],
        "held_out": ["festival:czech_ph", "festival:czech_krb"],
    },
    "it": {
        "target": "festival:lp_diphone",
        "multi": ["espeak:it", "espeak:it+m3", "espeak:it+f2", "espeak:it+f4",
                  "espeak:it+m7", "espeak:it+klatt2"],
        "held_out": ["festival:pc_diphone"],
    },
}
TEST_SEED, LOW_SEED, UNPAIRED_SEED, FULL_SEED, TEXT_SEED = 7, 8, 9, 10, 11


def damaged(voices: list[str]) -> list[str]:
    return [f"{voice}@{DAMAGE[i % len(DAMAGE)]}" for i, voice in enumerate(voices)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", default="cs", choices=sorted(LANGUAGES))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the non-target budgets (tests use a small one)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    lang, spec, out = args.language, LANGUAGES[args.language], args.out

    def n(count: int) -> int:
        return max(2, round(count * args.scale))

    low = damaged(spec["multi"])

    def build(name: str, voices: list[str], utterances: int, seed: int, valid: float) -> None:
        """One corpus; an engine that fails on a few sentences (festival lp_diphone does on
        some names) leaves them out, and the manifest lists the rest."""
        try:
            build_corpus(out / name, lang, voices, utterances, seed=seed, valid_share=valid,
                         workers=args.workers)
        except EngineError as err:
            print(f"warning: {name}: {err.message}", flush=True)

    # 50 train + 40 test sentences of the target voice
    build("paired", [spec["target"]], 90, TEST_SEED, 40 / 90)
    build("low-quality", low, n(33), LOW_SEED, 0.0)
    build("eval", spec["held_out"] + low[:2], 40, TEST_SEED, 0.999)
    build("unpaired", low, n(433), UNPAIRED_SEED, 0.0)
    build("full", [spec["target"]] + spec["multi"], n(400), FULL_SEED, 0.05)
    text = [s for s in shuffled_sentences(lang, TEXT_SEED) if not is_valid_sentence(s)]
    (out / "unpaired-text.txt").write_text("\n".join(text[:n(4000)]) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
