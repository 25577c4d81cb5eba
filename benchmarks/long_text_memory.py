"""Peak memory (RSS) of `adavoice synth` on long text: 1k, 10k and 100k characters of real
sentences (the fortunes/wordnet text the corpus builder uses), each in a fresh process, so the
peak is that run's alone. Writes benchmarks/results/long-text-memory.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/long_text_memory.py [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpus_text(characters: int) -> str:
    """At least ``characters`` characters of English sentences, cut at a sentence end."""
    from adavoice.data.corpus.text_sources import shuffled_sentences

    pool = shuffled_sentences("en", seed=0)
    text, index = "", 0
    while len(text) < characters:
        text += pool[index % len(pool)] + " "
        index += 1
    return text[:characters].rsplit(". ", 1)[0] + "."


def run(characters: int, vocoder: str, work: Path) -> dict:
    text_path, out = work / f"text-{characters}.txt", work / f"out-{characters}.wav"
    text = corpus_text(characters)
    text_path.write_text(text.replace("\n", " "), encoding="utf-8")
    # one line: --text-file speaks each line as one text; the long line is cut inside synth
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(text_path), str(out), vocoder],
                          capture_output=True, text=True, cwd=ROOT)
    wall_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    peak_kb = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_kb"]
    import soundfile as sf

    return {"characters": len(text), "vocoder": vocoder, "peak_rss_mb": round(peak_kb / 1024, 1),
            "audio_s": round(sf.info(str(out)).duration, 1), "wall_s": round(wall_s, 1)}


_CHILD = """
import json, resource, sys
from adavoice.cli.main import main
text = open(sys.argv[1], encoding="utf-8").read()
try:
    main(["synth", text, "--out", sys.argv[2], "--vocoder", sys.argv[3], "--overwrite"])
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--vocoder", default="auto")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/long-text-memory.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for size in args.sizes:
            rows.append(run(size, args.vocoder, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/long_text_memory.py",
              "cpu": platform.processor() or platform.machine(),
              "threads": os.environ.get("OMP_NUM_THREADS"), "rows": rows,
              "self_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
