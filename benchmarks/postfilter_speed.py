"""Issue 18: what the demo base's learned mel post-filter costs at synthesis, beside the
acoustic model and the universal vocoder, at one thread, in one run ->
benchmarks/results/postfilter-speed.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/postfilter_speed.py

RTF = seconds of compute per second of audio, best of several runs, one sentence.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from universal_speed import best_of  # noqa: E402

from adavoice.api import BaseModel  # noqa: E402
from adavoice.models.universal import HiFiGANRenderer, load_universal  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEXT = ("The quick brown fox jumps over the lazy dog while the children watch from the window, "
        "and nobody says a word about it.")


def main() -> int:
    torch.set_num_threads(1)
    base = BaseModel.load("demo")
    condition = base.model.speaker_condition(base.speaker_id("flite:rms"))
    postfilter = base.mel_postfilter("universal")
    if postfilter is None:
        raise SystemExit("the demo base ships no post-filter")
    universal = HiFiGANRenderer(load_universal(), "bfloat16")
    with torch.no_grad():
        mel = base.mel(TEXT, condition)
        seconds = (mel.shape[-1] - 1) * base.cfg.mel.hop_length / base.sample_rate
        rtf = {"acoustic": best_of(lambda: base.mel(TEXT, condition), 5) / seconds,
               "postfilter": best_of(lambda: postfilter(mel), 5) / seconds,
               "universal_bf16": best_of(lambda: universal(mel), 3) / seconds}
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/postfilter_speed.py",
              "cpu": platform.processor() or platform.machine(), "threads": 1,
              "audio_s": round(seconds, 2), "frames": int(mel.shape[-1]),
              "rtf": {k: round(v, 4) for k, v in rtf.items()}}
    out = ROOT / "benchmarks" / "results" / "postfilter-speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
