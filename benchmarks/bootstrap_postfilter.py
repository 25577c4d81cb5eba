"""Issue 20 (and 18): does a learned post-filter, trained on a bootstrapped base's own mels of
its 50 real target-voice pairs, help it? -> benchmarks/results/bootstrap-LANG-postfilter.json.

    adavoice train postfilter data/bootstrap-cs/paired --model cs-demo --out runs/pf-cs --steps 2000
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bootstrap_postfilter.py runs/pf-cs
    # Italian: --language it --model runs/bootstrap-it (its --data and --judge follow)

On the 40 held-out sentences of benchmarks/bootstrap.py (never trained on by anything): the
base as shipped and a copy with the post-filter installed. Audio through the universal vocoder
against the engine's own recordings (benchmarks/bootstrap.py's ``tts_quality``: MCD, log-F0
RMSE, DistillMOS, DNSMOS), and the frozen judge ASR's CER on the TTS's mels (post-filtered,
as the vocoder hears them, for the filtered copy) over its CER on the real recordings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import ROOT, engine_mos, judge_ratio, tts_quality  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("postfilter", type=Path, help="a post-filter run for --model")
    parser.add_argument("--language", default="cs")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "cs-demo")
    parser.add_argument("--data", type=Path, default=None, help="data/bootstrap-LANG")
    parser.add_argument("--judge", type=Path, default=None, help="runs/judge-LANG")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    language = args.language
    args.data = args.data or ROOT / "data" / f"bootstrap-{language}"
    args.judge = args.judge or ROOT / "runs" / f"judge-{language}"
    args.out = args.out or ROOT / "benchmarks" / "results" / f"bootstrap-{language}-postfilter.json"
    from adavoice.bootstrap.data import read_inputs
    from adavoice.models.base_model import BaseModel
    from adavoice.models.mel_postfilter import MelPostfilter
    from adavoice.text.pack import LanguagePack

    inputs = read_inputs(language, LanguagePack.load(language), args.data / "paired",
                         args.data / "unpaired", args.data / "unpaired-text.txt",
                         args.data / "low-quality")
    held, target = inputs.held_out, inputs.target
    started = time.perf_counter()
    rows = [{"system": "engine audio (reference)", **engine_mos(held)}]
    with tempfile.TemporaryDirectory() as tmp:
        skip = shutil.ignore_patterns("postfilter", "work", "checkpoints")  # a run's extras
        filtered = shutil.copytree(args.model, Path(tmp) / "filtered", ignore=skip)
        net = MelPostfilter.from_dir(args.postfilter)
        net.save(filtered / "postfilter", net.provenance, half=True)  # as --install writes it
        for name, folder in ((f"{args.model.name} as shipped", args.model),
                             (f"{args.model.name} + post-filter", filtered)):
            shape = BaseModel.load(folder, precision="float32").mel_filter("universal")
            row = {"system": name, **judge_ratio(args.judge, folder, held, target, shape),
                   **tts_quality(folder, held, target, Path(tmp) / name.replace(" ", "-"))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"command": "OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bootstrap_postfilter.py "
                         + " ".join(argv if argv is not None else sys.argv[1:]),
              "postfilter_training": MelPostfilter.from_dir(args.postfilter).provenance,
              "held_out_sentences": len(held), "target": target, "rows": rows,
              "wall_s": round(time.perf_counter() - started, 1)}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
