"""Issue 18's speed row on the CPU at hand, side by side in one run at one thread, on one
sentence of about 8 s in the demo base's seen voice ``flite:rms``:

- the acoustic model (text -> mel) in float32 and at the precision ``auto`` picks here;
- the demo base's mel post-filter;
- every renderer: Griffin-Lim, the universal HiFi-GAN in torch float32, torch bfloat16
  autocast and onnxruntime float32, and the one ``--vocoder auto`` builds on this CPU;
- the two whole pipelines a user gets, ``BaseModel.synthesize(..., vocoder="griffin-lim")``
  and ``vocoder="auto"``, and their ratio (the issue's target: auto >= 1.7x faster).

The CPU's model name and its bfloat16 features (AVX512-BF16, AMX) are recorded: the
bfloat16 rows depend on them. RTF = seconds of compute per second of audio, best of several.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pipeline_speed.py
    # -> benchmarks/results/pipeline-speed-<cpu>.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import cpu_name  # noqa: E402
from universal_speed import best_of  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEXT = ("The quick brown fox jumps over the lazy dog, and then it runs far away across the "
        "fields, past the river and into the quiet forest beyond the hills.")


def cpu() -> dict:
    """The CPU's model name and the features the bfloat16 paths use (Linux /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    return {"model": cpu_name(), "cores": os.cpu_count(),
            "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags}


def tag(info: dict) -> str:
    return "amx" if info["amx_bf16"] else "avx512bf16" if info["avx512_bf16"] else "nobf16"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from adavoice.models.base_model import BaseModel
    from adavoice.models.universal import (
        HiFiGANRenderer,
        bfloat16_is_fast,
        load_universal,
        universal_vocoder,
    )

    torch.set_num_threads(1)
    info = cpu()
    base = BaseModel.load("demo")  # precision "auto"
    plain = BaseModel.load("demo", precision="float32")
    speaker = "flite:rms"
    condition = base.model.speaker_condition(base.speaker_id(speaker))
    repeats = args.repeats
    with torch.no_grad():
        mel = base.mel(TEXT, condition)
        seconds = (mel.shape[-1] - 1) * base.cfg.mel.hop_length / base.sample_rate
        generator = load_universal()
        renderers = {
            "griffin-lim": base.vocoder("griffin-lim"),
            "universal torch float32": HiFiGANRenderer(generator, "float32"),
            "universal torch bfloat16": HiFiGANRenderer(generator, "bfloat16"),
            "universal onnxruntime float32": universal_vocoder(base.cfg.mel, "onnxruntime"),
        }
        auto_kind = base.auto_vocoder
        postfilter = base.mel_postfilter("universal")
        rtf = {"acoustic model, float32": best_of(
                   lambda: plain.mel(TEXT, condition), 2 * repeats) / seconds,
               f"acoustic model, precision auto ({base.precision})": best_of(
                   lambda: base.mel(TEXT, condition), 2 * repeats) / seconds}
        if postfilter is not None:
            rtf["mel post-filter"] = best_of(lambda: postfilter(mel), 2 * repeats) / seconds
        for name, render in renderers.items():
            rtf[name] = best_of(lambda render=render: render(mel), repeats) / seconds
        pipelines = {kind: best_of(lambda kind=kind: base.synthesize(TEXT, speaker,
                                                                     vocoder=kind), repeats)
                     / seconds for kind in ("griffin-lim", "auto")}
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pipeline_speed.py"
                         + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
              "cpu": info, "threads": 1, "audio_s": round(seconds, 2),
              "auto": {"vocoder": auto_kind, "universal_precision": (
                  "bfloat16" if bfloat16_is_fast() else "onnxruntime float32"),
                  "acoustic_precision": base.precision,
                  "postfilter": postfilter is not None},
              "rtf": {k: round(v, 4) for k, v in rtf.items()},
              "pipeline_rtf": {k: round(v, 4) for k, v in pipelines.items()},
              "auto_speedup_over_griffin_lim": round(pipelines["griffin-lim"]
                                                     / pipelines["auto"], 3)}
    out = args.out or ROOT / "benchmarks" / "results" / f"pipeline-speed-{tag(info)}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
