"""What a wider decoder costs at inference: decoder-only real-time factor of the ``small``
preset (the shipped one, 128 wide) against the ``base`` preset (FastSpeech 2 paper size, 256
wide, whose conditional layer norms hold 4,096 numbers as AdaSpeech's do, against 2,048).

Weights are random: the time of a decoder pass does not depend on them, only on its shapes and
the number of frames, which is fixed here (5 s of audio). One torch thread, the decoder
precision synthesis uses (``auto``: bfloat16 on a CPU with AMX).

    .venv/bin/python benchmarks/decoder_width.py   # -> benchmarks/results/decoder-width.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from adavoice.models.acoustic import AcousticModel
from adavoice.models.acoustic_config import AcousticConfig
from adavoice.nn.transformer import resolve_inference_dtype

SECONDS = 5.0


def decoder_rtf(preset: str, precision: str, repeats: int) -> dict:
    cfg = AcousticConfig.preset(preset, n_symbols=100, n_speakers=4)
    model = AcousticModel(cfg).eval()
    dtype = resolve_inference_dtype(precision)
    model.decoder.set_inference_dtype(dtype)
    frames_n = int(SECONDS * 22050 / 256) + 1
    frames = torch.randn(1, frames_n, cfg.hidden)
    mask = torch.ones(1, frames_n, dtype=torch.bool)
    speaker = torch.randn(1, cfg.speaker_dim)
    with torch.no_grad():
        for _ in range(5):  # warm-up
            model.decode(frames, mask, speaker)
        started = time.perf_counter()
        for _ in range(repeats):
            model.decode(frames, mask, speaker)
        seconds = (time.perf_counter() - started) / repeats
    return {"preset": preset, "hidden": cfg.hidden, "ffn_hidden": cfg.ffn_hidden,
            "decoder_layers": cfg.decoder_layers,
            "cln_numbers": 2 * cfg.hidden * len(model.conditional_norms()),
            "decoder_parameters": sum(p.numel() for p in model.decoder.parameters()),
            "precision": str(dtype).removeprefix("torch."),
            "decoder_rtf_1_thread": round(seconds / SECONDS, 5)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decoder-width.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [decoder_rtf(p, args.precision, args.repeats) for p in ("small", "base")]
    for row in rows:
        print(json.dumps(row))
    result = {"rows": rows, "audio_seconds": SECONDS, "machine": platform.processor() or
              platform.machine(), "command": "python " + " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
