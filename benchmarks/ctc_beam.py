"""Issue 20: greedy against beam decoding (with and without the character n-gram of the unpaired
text) for a bootstrapped recogniser -> benchmarks/results/bootstrap-LANG-beam.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ctc_beam.py cs-demo --data data/bootstrap-cs
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ctc_beam.py runs/bootstrap-it \
        --data data/bootstrap-it

Sets: the target voice's 40 held-out sentences, and the evaluation set (festival czech_ph and
czech_krb, never trained on; two seen damaged voices), per speaker. The n-gram (order 5,
Witten-Bell) is trained on the 4,000 unpaired text lines, which hold none of the test sentences.
``--lm-text FILE`` / ``--lm-order N`` train the n-gram on other text or at another order
(to measure what more text buys; the file must hold none of the test sentences); ``--lm-text
pool``: the language's whole training pool of system text (the corpus's unpaired text is its
first 4,000 lines).
The shipped setting is alpha 0.5, beta 1.0, beam 8 (chosen before measuring); the other two
(alpha, beta) pairs are shown as its sensitivity, measured on the same test sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {"greedy": None, "beam 8, no LM": {"lm": False},
            "beam 8 + LM, alpha 0.5 beta 1.0 (shipped)": {"alpha": 0.5, "beta": 1.0},
            "beam 8 + LM, alpha 0.3 beta 0.5": {"alpha": 0.3, "beta": 0.5},
            "beam 8 + LM, alpha 0.8 beta 1.5": {"alpha": 0.8, "beta": 1.5}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", default="cs-demo", nargs="?")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bootstrap-cs")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/bootstrap-LANG-beam.json")
    parser.add_argument("--lm-text", default=None,
                        help="train the n-gram on this text file, or on 'pool' (default: the "
                             "unpaired text)")
    parser.add_argument("--lm-order", type=int, default=5)
    args = parser.parse_args(argv)
    import torch

    from adavoice.bootstrap.data import read_inputs
    from adavoice.data.manifest import Manifest
    from adavoice.models.asr import Recogniser, greedy_ids
    from adavoice.models.ctc_decode import CharNgram, prefix_beam_search
    from adavoice.text import TextProcessor
    from adavoice.text.pack import LanguagePack
    from adavoice.train.asr import pad_mels, score, token_text

    d = args.data
    language = Manifest.load(d / "paired")[0].language
    inputs = read_inputs(language, LanguagePack.load(language), d / "paired", d / "unpaired",
                         d / "unpaired-text.txt", evaluation=[d / "eval"])
    out = args.out or ROOT / "benchmarks" / "results" / f"bootstrap-{language}-beam.json"
    recogniser = Recogniser.load(args.model)
    processor = TextProcessor.from_symbols(recogniser.symbols, emit_warnings=False)
    symbols = list(recogniser.symbols.symbols)
    lm_lines = inputs.text
    if args.lm_text is not None:
        held = {u.text for u in inputs.held_out} | {u.text for u in inputs.evaluation["eval"]}
        if args.lm_text == "pool":
            from adavoice.data.corpus.text_sources import is_valid_sentence, shuffled_sentences

            lm_lines = [t for t in shuffled_sentences(language, 11) if not is_valid_sentence(t)]
        else:
            lm_lines = [t for t in Path(args.lm_text).read_text(encoding="utf-8").splitlines()
                        if t.strip()]
        if held & set(lm_lines):
            raise SystemExit("--lm-text holds test sentences")
    lm = CharNgram.train([token_text(processor.process(t).tokens) for t in lm_lines],
                         order=args.lm_order)
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ctc_beam.py "
                         + " ".join(argv if argv is not None else sys.argv[1:]),
              "lm_lines": len(lm_lines), "lm_order": args.lm_order, "sets": {}}
    for name, rows in {"target": inputs.held_out, "eval": inputs.evaluation["eval"]}.items():
        refs = [token_text(processor.process(u.text).tokens) for u in rows]
        mels = recogniser.mels([u.audio for u in rows])
        log_probs = []
        with torch.no_grad():
            for i in range(0, len(mels), 16):
                padded, lengths = pad_mels(mels[i:i + 16])
                lp, steps = recogniser.model(padded, lengths)
                log_probs += [lp[j, :steps[j]].float().numpy() for j in range(len(steps))]
        table = {}
        for label, setting in SETTINGS.items():
            started = time.perf_counter()
            if setting is None:
                paths = [greedy_ids(torch.from_numpy(x)[None], torch.tensor([len(x)]))[0]
                         for x in log_probs]
            else:
                kwargs = {k: v for k, v in setting.items() if k != "lm"}
                paths = [prefix_beam_search(x, symbols, beam=8,
                                            lm=lm if setting.get("lm", True) else None,
                                            **kwargs) for x in log_probs]
            hyps = [token_text(symbols[i] for i in p) for p in paths]
            scored = score(refs, hyps)
            speakers = {}
            for speaker in sorted({u.speaker for u in rows}):
                ix = [i for i, u in enumerate(rows) if u.speaker == speaker]
                speakers[speaker] = round(score([refs[i] for i in ix],
                                                [hyps[i] for i in ix])["cer"], 4)
            table[label] = {"cer": round(scored["cer"], 4), "wer": round(scored["wer"], 4),
                            "by_speaker": speakers, "decode_s_per_utterance": round(
                                (time.perf_counter() - started) / len(rows), 4)}
            print(name, label, table[label]["cer"], flush=True)
        result["sets"][name] = table
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
