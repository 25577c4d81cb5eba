"""Micro-benchmark: the FFN's kernel-5 Conv1d against im2col + one matrix product, 1 thread.

    .venv/bin/python benchmarks/ffn_conv_probe.py

Prints milliseconds per call at 100 / 300 / 600 frames (hidden 128 -> 512) and checks that both
give the same numbers. ``adavoice.nn.transformer.FFTBlock`` uses the second form at inference.
"""

from __future__ import annotations

import time

import torch


def per_call_ms(fn, x, calls: int = 50) -> float:
    for _ in range(5):
        fn(x)
    started = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.perf_counter() - started) / calls * 1e3


def main() -> None:
    torch.set_num_threads(1)
    conv = torch.nn.Conv1d(128, 512, 5, padding=2).eval()
    weight = conv.weight.detach().reshape(512, -1)  # (out, in * k), in-major like unfold's

    def unfolded(x):  # x (1, 128, T) -> (T, 512)
        time_major = torch.nn.functional.pad(x, (2, 2))[0].t()  # (T + 4, 128)
        cols = time_major.unfold(0, 5, 1).reshape(x.shape[-1], -1)  # (T, 128 * 5)
        return torch.addmm(conv.bias.detach(), cols, weight.t())

    with torch.no_grad():
        for frames in (100, 300, 600):
            x = torch.randn(1, 128, frames)
            assert torch.allclose(unfolded(x), conv(x)[0].t(), atol=1e-4)
            print(f"{frames} frames: Conv1d {per_call_ms(conv, x):.3f} ms, "
                  f"im2col + matmul {per_call_ms(unfolded, x):.3f} ms")


if __name__ == "__main__":
    main()
