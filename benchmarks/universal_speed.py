"""The universal vocoder made cheaper (issue 18, "make the teacher itself cheaper"): torch
float32, torch bfloat16 autocast and onnxruntime float32 side by side at one thread on the same
~8.4 s mel, with the ONNX graph's parity -> benchmarks/results/universal-speed.json. For the
universal generator also the renderer ``auto`` builds where bfloat16 is not native
(``universal_vocoder(..., "onnxruntime")``: the cached graph, in the renderer's fixed passes).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_speed.py
    # a shrunk generator (adavoice.models.prune) instead:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_speed.py --generator DIR --out F
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from adavoice.export.vocoder import export_vocoder, parity_error
from adavoice.models.hifigan import HiFiGAN
from adavoice.models.universal import HiFiGANRenderer, load_universal

OUT = Path(__file__).resolve().parent / "results" / "universal-speed.json"
FRAMES = 725  # 724 hops of 256 samples at 22050 Hz: 8.4 s


def best_of(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    import onnxruntime as ort

    parser = argparse.ArgumentParser()
    parser.add_argument("--generator", type=Path, default=None,
                        help="a HiFi-GAN folder (e.g. a shrunk fast vocoder); default universal")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    generator = load_universal() if args.generator is None else HiFiGAN.from_dir(args.generator)
    mel = torch.randn(1, 80, FRAMES) - 5.0
    audio_s = (FRAMES - 1) * 256 / 22050
    rtf = {}
    for precision in ("float32", "bfloat16"):
        render = HiFiGANRenderer(generator, precision)
        rtf[f"torch_{precision}"] = best_of(lambda render=render: render(mel[0])) / audio_s
    if args.generator is None:  # what `auto` runs where bfloat16 is not native
        from adavoice.config import MelConfig
        from adavoice.models.universal import universal_vocoder

        render = universal_vocoder(MelConfig(), "onnxruntime")
        rtf["renderer_onnxruntime_float32"] = best_of(lambda: render(mel[0])) / audio_s
    with tempfile.TemporaryDirectory() as tmp:
        path = export_vocoder(generator, Path(tmp) / "universal.onnx")
        parity = parity_error(generator, path, mel[:, :, :200])
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"mel": mel.numpy().astype(np.float32)}
        rtf["onnxruntime_float32"] = best_of(lambda: session.run(None, feed)) / audio_s
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_speed.py"
    if args.generator is not None:
        command += f" --generator {args.generator} --out {args.out}"
    result = {"command": command, "generator": str(args.generator or "universal"),
              "parameters": sum(p.numel() for p in generator.parameters()),
              "cpu": platform.processor() or platform.machine(), "audio_s": round(audio_s, 2),
              "rtf_one_thread": {k: round(v, 4) for k, v in rtf.items()},
              "onnx_max_abs_error": parity}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
