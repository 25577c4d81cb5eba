"""Does MCD order speaker pairs sensibly? -> benchmarks/results/eval_sanity.json

    .venv/bin/python benchmarks/eval_sanity.py --data data/corpus-en

Compares engine audio of the same held-out sentences: the same speaker through two engines
(festival kal_diphone vs flite kal16) against pairs of different speakers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from adavoice.data.manifest import Manifest
from adavoice.evaluate.report import evaluate_dirs

PAIRS = [
    ("festival:kal_diphone", "flite:kal16", "same speaker, two engines"),
    ("festival:kal_diphone", "flite:rms", "different speakers"),
    ("flite:kal16", "flite:rms", "different speakers"),
    ("flite:kal16", "espeak:en-us", "different speakers"),
    ("festival:kal_diphone", "festival:ked_diphone", "different speakers"),
]


def speaker_dir(manifest: Manifest, speaker: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for utt in manifest.filter(speaker=speaker).split("valid"):
        key = hashlib.sha1(utt.text.lower().strip().encode("utf-8")).hexdigest()[:12]
        name = f"{key}.wav"
        (folder / name).symlink_to(manifest.audio_path(utt).resolve())
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/corpus-en", type=Path)
    parser.add_argument("--out", default="benchmarks/results/eval_sanity.json", type=Path)
    args = parser.parse_args(argv)
    manifest = Manifest.load(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ref, hyp, kind in PAIRS:
            a = speaker_dir(manifest, ref, Path(tmp) / f"{ref}-{hyp}" / "ref")
            b = speaker_dir(manifest, hyp, Path(tmp) / f"{ref}-{hyp}" / "hyp")
            summary = evaluate_dirs(a, b).summary()
            rows.append({"ref": ref, "hyp": hyp, "kind": kind, "pairs": summary["pairs"],
                         "mcd_db": summary["mean_mcd_db"],
                         "log_f0_rmse_cents": summary["mean_log_f0_rmse_cents"],
                         "vuv_error": summary["mean_vuv_error"]})
            print(rows[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python benchmarks/eval_sanity.py",
                                    "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
