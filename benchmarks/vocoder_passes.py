"""How the universal renderer should cut a mel into passes, on the CPU at hand, at one thread.

The renderer runs every pass at one of a few fixed lengths (bounded memory: oneDNN compiles
kernels per shape). Two plans are timed side by side in one run:

- ``grid``: a mel is padded to the next of 128, 256, 384, 512, 768 or 1,024 frames, and a
  longer one is cut into 1,024-frame windows (the renderer's plan until this benchmark);
- ``windows N``: every pass is N frames, a longer mel is cut into N-frame windows with 16
  frames of context each side (the same code, ``HiFiGANRenderer(pass_frames=(N,))``).

Rows: steady-state RTF (best of ``--repeats`` after a warm-up call) per precision (torch
bfloat16 autocast where the CPU has it, torch float32, onnxruntime float32) and mel length;
the cost of one pass per frame at each length; and, in fresh processes as a CLI call sees it,
the first call's time (kernel compilation included), the steady call and the peak RSS for an
800-frame mel (9.3 s). Speed only: the plans' outputs are the one-pass output but for the
last 16 frames (tests/test_universal_vocoder.py), so no listener model is run. Mels are random
(speed does not depend on their values).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vocoder_passes.py
    # -> benchmarks/results/vocoder-passes-<cpu>.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_speed import cpu, tag  # noqa: E402
from universal_speed import best_of  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LENGTHS = (150, 400, 800, 1500)  # frames: 1.7, 4.6, 9.3 and 17.4 s
HOP_S = 256 / 22050


def plans() -> dict:
    from adavoice.models.universal import PASS_FRAMES

    return {"grid": PASS_FRAMES, "windows 96": (96,), "windows 128": (128,),
            "windows 192": (192,), "windows 256": (256,)}


def renderer(precision: str, grid: tuple, generator=None):
    from adavoice.models.universal import HiFiGANRenderer, load_universal, onnx_graph

    generator = generator if generator is not None else load_universal()
    graph = onnx_graph(generator) if precision == "onnxruntime" else None
    return HiFiGANRenderer(generator, precision, pass_frames=grid, graph=graph)


def mel(frames: int) -> torch.Tensor:
    torch.manual_seed(frames)
    return torch.randn(80, frames) * 2 - 6


def steady(render, frames: int, repeats: int) -> float:
    m = mel(frames)  # best_of's warm-up call compiles this plan's shapes
    return best_of(lambda: render(m), repeats) / ((frames - 1) * HOP_S)


def child(precision: str, name: str) -> None:
    """One fresh process: three calls on an 800-frame mel, then the peak RSS (VmHWM: the
    rusage maximum survives exec, so a child of this large process would report the
    parent's)."""
    torch.set_num_threads(1)
    render = renderer(precision, plans()[name])
    m, calls = mel(800), []
    for _ in range(3):
        start = time.perf_counter()
        render(m)
        calls.append(time.perf_counter() - start)
    print(json.dumps({"first_call_s": round(calls[0], 3),
                      "steady_call_s": round(min(calls[1:]), 3),
                      "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmHWM:"))) // 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("PRECISION", "PLAN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    from adavoice.models.universal import bfloat16_is_fast, load_universal

    torch.set_num_threads(1)
    info = cpu()
    precisions = (["bfloat16"] if bfloat16_is_fast() else []) + ["float32", "onnxruntime"]
    generator = load_universal()  # once: every plan renders the same weights
    rtf: dict = {}
    for precision in precisions:
        names = list(plans()) if precision == precisions[0] else ["grid", "windows 128"]
        for name in names:
            render = renderer(precision, plans()[name], generator)
            rtf[f"{precision}, {name}"] = {str(f): round(steady(render, f, args.repeats), 4)
                                          for f in LENGTHS}
            print(f"{precision}, {name}", rtf[f"{precision}, {name}"], flush=True)
    # the cost of one pass a frame, by its length (what the plans trade)
    per_frame = {}
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                enabled=precisions[0] == "bfloat16"):
        for frames in (96, 128, 192, 256, 384, 512, 768, 1024):
            batch = mel(frames)[None]
            best = best_of(lambda batch=batch: generator(batch), args.repeats)
            per_frame[str(frames)] = round(1000 * best / frames, 3)
    fresh = {}
    for name in ("grid", "windows 128"):
        done = subprocess.run([sys.executable, __file__, "--child", precisions[0], name],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        fresh[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print("fresh process", name, fresh[name], flush=True)
    mean = {key: round(sum(row.values()) / len(row), 4) for key, row in rtf.items()}
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vocoder_passes.py",
              "cpu": info, "threads": 1, "mel_frames": list(LENGTHS),
              "rtf": rtf, "rtf_mean_over_lengths": mean,
              "one_pass_ms_per_frame": {"precision": precisions[0], **per_frame},
              "fresh_process_800_frames": {"precision": precisions[0], **fresh},
              "speedup_windows_128_over_grid": {
                  p: round(mean[f"{p}, grid"] / mean[f"{p}, windows 128"], 3)
                  for p in precisions}}
    out = args.out or ROOT / "benchmarks" / "results" / f"vocoder-passes-{tag(info)}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
