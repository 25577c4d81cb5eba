"""Issue 20: how much a character n-gram would sharpen the bootstrap's pseudo-labels (a lever
for the next run, not used by the shipped defaults).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/pseudo_label_decoding.py \\
        runs/bootstrap-cs/work/round-1/asr --data data/bootstrap-cs

The given ASR (round 1's, which labelled the unpaired speech for round 2) transcribes the
2,598 unpaired utterances greedily, as the bootstrap does, and with beam search (8) plus the
5-gram of the unpaired text (alpha 0.5, beta 1.0); both are scored against the text the engine
spoke. Prints CER and decoding time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("asr", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bootstrap-cs")
    args = parser.parse_args(argv)
    from adavoice.bootstrap.data import read_inputs
    from adavoice.models.asr import Recogniser
    from adavoice.models.ctc_decode import CharNgram
    from adavoice.text import TextProcessor
    from adavoice.text.pack import LanguagePack
    from adavoice.train.asr import score, token_text, transcribe_mels

    d = args.data
    inputs = read_inputs("cs", LanguagePack.load("cs"), d / "paired", d / "unpaired",
                         d / "unpaired-text.txt")
    recogniser = Recogniser.load(args.asr)
    processor = TextProcessor.from_symbols(recogniser.symbols, emit_warnings=False)
    lm = CharNgram.train([token_text(processor.process(t).tokens) for t in inputs.text], order=5)
    refs = [token_text(processor.process(u.extra["true_text"]).tokens) for u in inputs.unpaired]
    mels = recogniser.mels([u.audio for u in inputs.unpaired])
    symbols = list(recogniser.symbols.symbols)
    for decoder in ("greedy", "beam"):
        started = time.perf_counter()
        hyps = transcribe_mels(recogniser.model, mels, symbols, decoder=decoder,
                               lm=lm if decoder == "beam" else None)
        print(f"{decoder}: pseudo-label CER {score(refs, hyps)['cer']:.4f} "
              f"({time.perf_counter() - started:.1f} s for {len(refs)} utterances)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
