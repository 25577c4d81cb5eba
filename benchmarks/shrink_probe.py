"""Issue 18 part 2, "shrink the teacher", before any training -> results/shrink-probe.json

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shrink_probe.py

1. Speed: the V1 layout at several widths (random weights), one thread, one 8.4 s mel, torch
   float32 and bfloat16 autocast, best of 3 (speed does not depend on the weights).
2. Pruning alone: the universal generator cut to a width by keeping its strongest channels
   (adavoice.models.prune), without and with the layer-by-layer refit, measured as mel L1
   against the teacher on 12 held-out utterances of data/fast-vocoder-corpus (16 other crops
   of 120 frames calibrate), and the output's RMS against the teacher's.
"""

from __future__ import annotations

import json
import platform
import random
import sys
from pathlib import Path

import soundfile as sf
import torch

from adavoice.audio import MelFrontend
from adavoice.config import MelConfig
from adavoice.models.hifigan import HiFiGAN, HiFiGANConfig
from adavoice.models.prune import prune_generator, refit
from adavoice.models.universal import load_universal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from universal_speed import best_of  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "shrink-probe.json"
WIDTHS = (512, 256, 128, 64)
SCHEDULES = ((256, 128, 24, 12, 6), (128, 64, 24, 12, 6))


def speed() -> dict:
    mel = torch.randn(1, 80, 725) - 5.0
    seconds = 724 * 256 / 22050
    rows = {}
    configs = [HiFiGANConfig(upsample_initial_channel=w) for w in WIDTHS]
    configs += [HiFiGANConfig(stage_channels=s) for s in SCHEDULES]
    for cfg in configs:
        generator = HiFiGAN(cfg).eval()
        row = {"parameters": sum(p.numel() for p in generator.parameters())}
        for precision in ("float32", "bfloat16"):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                        enabled=precision == "bfloat16"):
                row[f"rtf_{precision}"] = round(best_of(lambda g=generator: g(mel)) / seconds, 4)
        rows["-".join(map(str, cfg.channels))] = row
        print(rows, flush=True)
    return rows


def corpus_mels(crop_frames: int, held_count: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """From data/fast-vocoder-corpus in a seeded order: 16 calibration crops of
    ``crop_frames`` frames (B, 80, crop_frames) and ``held_count`` other whole utterances."""
    corpus = ROOT / "data" / "fast-vocoder-corpus"
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    random.Random(1).shuffle(rows)
    frontend = MelFrontend(MelConfig())

    def mel_of(row):
        samples, _ = sf.read(corpus / row["audio"], dtype="float32")
        return frontend(torch.from_numpy(samples))

    crops = [m[:, :crop_frames] for m in map(mel_of, rows[:40])
             if m.shape[-1] >= crop_frames][:16]
    return torch.stack(crops), [mel_of(row) for row in rows[100:100 + held_count]]


@torch.no_grad()
def mel_l1(waves: list[torch.Tensor], targets: list[torch.Tensor]) -> float:
    """Mean log-mel L1 between each wave and its target wave."""
    frontend = MelFrontend(MelConfig())
    return sum(float((frontend(w) - frontend(t)).abs().mean())
               for w, t in zip(waves, targets, strict=True)) / len(targets)


def pruning() -> dict:
    calibration, held = corpus_mels(120, 12)
    teacher = load_universal().eval()
    with torch.no_grad():
        targets = [teacher(m[None])[0] for m in held]

    def measure(generator) -> dict:
        with torch.no_grad():
            waves = [generator(mel[None])[0] for mel in held]
        return {"mel_l1_vs_teacher": round(mel_l1(waves, targets), 3),
                "output_rms": round(sum(float(w.pow(2).mean().sqrt()) for w in waves)
                                    / len(held), 5)}

    result = {"teacher_output_rms": round(sum(float(t.pow(2).mean().sqrt()) for t in targets)
                                          / len(targets), 5)}
    for width in WIDTHS[1:]:
        channels = tuple(width // 2 ** i for i in range(5))
        pruned = prune_generator(teacher, channels, calibration)
        row = {"kept": measure(pruned)}
        row["kept_and_refitted"] = measure(refit(teacher, pruned, calibration))
        result["-".join(map(str, channels))] = row
        print(result, flush=True)
    return result


def main() -> int:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shrink_probe.py",
              "cpu": platform.processor() or platform.machine(),
              "speed_one_thread": speed(), "pruning": pruning()}
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
