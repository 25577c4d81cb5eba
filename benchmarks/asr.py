"""Issue 20 part 1: the CTC recogniser's CER/WER per voice, seen and unseen ->
benchmarks/results/asr-en.json (+ a Markdown table for BENCHMARKS.md).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/asr.py runs/asr-en

Sets: the training corpus's valid split (its 14 voices, sentences never trained on) and
data/vocoder-quality (flite:rms, a training voice, and five voices no model here trained on:
flite:slt, espeak en-us+f3 and +m3, flite:awb, festival slt HTS; built by
benchmarks/vocoder_quality.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def per_speaker(rows: list[dict]) -> dict:
    from adavoice.evaluate.text_metrics import cer, wer

    speakers = sorted({r["speaker"] for r in rows})
    out = {}
    for speaker in speakers:
        mine = [r for r in rows if r["speaker"] == speaker]
        refs, hyps = [r["reference"] for r in mine], [r["hypothesis"] for r in mine]
        out[speaker] = {"cer": cer(refs, hyps), "wer": wer(refs, hyps), "utterances": len(mine)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--train-corpus", type=Path, default=ROOT / "data" / "fast-vocoder-corpus")
    parser.add_argument("--unseen", type=Path, default=ROOT / "data" / "vocoder-quality")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "asr-en.json")
    args = parser.parse_args(argv)
    import tempfile

    from adavoice.data.manifest import Manifest
    from adavoice.models.asr import Recogniser

    recogniser = Recogniser.load(args.model)
    started = time.perf_counter()
    result = {"command": "OMP_NUM_THREADS=2 .venv/bin/python benchmarks/asr.py "
                         + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": json.loads((args.model / "config.json").read_text())["training"]}
    with tempfile.TemporaryDirectory() as tmp:  # the valid split alone, as its own manifest
        valid = Manifest(list(Manifest.load(args.train_corpus).split("valid")), args.train_corpus)
        folder = Path(tmp) / "valid"
        folder.mkdir()
        rows = []
        for u in valid:
            row = u.to_dict()
            row["audio"] = str(valid.audio_path(u).resolve())
            rows.append(json.dumps(row))
        (folder / "manifest.jsonl").write_text("\n".join(rows) + "\n")
        seen = recogniser.evaluate(folder)
    unseen = recogniser.evaluate(args.unseen)
    result["seen_voices_valid_split"] = {"cer": seen["cer"], "wer": seen["wer"],
                                         "utterances": seen["utterances"],
                                         "per_speaker": per_speaker(seen["rows"])}
    result["vocoder_quality_set"] = {"cer": unseen["cer"], "wer": unseen["wer"],
                                     "utterances": unseen["utterances"],
                                     "per_speaker": per_speaker(unseen["rows"]),
                                     "examples": unseen["rows"][:5]}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print("| set | voice | CER | WER | utterances |\n|---|---|---|---|---|")
    for label, key in (("seen, valid split", "seen_voices_valid_split"),
                       ("vocoder-quality set", "vocoder_quality_set")):
        block = result[key]
        for speaker, row in block["per_speaker"].items():
            print(f"| {label} | {speaker} | {100 * row['cer']:.1f} % | {100 * row['wer']:.1f} % "
                  f"| {row['utterances']} |")
        print(f"| {label} | **all** | {100 * block['cer']:.1f} % | {100 * block['wer']:.1f} % "
              f"| {block['utterances']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
