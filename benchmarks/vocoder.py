"""Benchmark of the neural vocoder (issue 4) -> benchmarks/results/vocoder.json (+ vocoder.md).

    .venv/bin/python benchmarks/vocoder.py --vocoder models/demo/vocoder

Copy-synthesis (audio -> mel -> audio) on held-out sentences: seen speakers (valid split of
data/corpus-en) and voices the vocoder never heard (flite:slt and espeak:en-us+f3 from
data/adapt-targets): wide-band PESQ, STOI, MCD, log-F0 RMSE, V/UV error, neural vs Griffin-Lim
(32 iterations) in the same run. Speed at 1 thread, side by side: the neural vocoder,
Griffin-Lim and a HiFi-GAN V3-sized generator (random weights) on the same 10 s mel.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from adavoice.audio import MelFrontend, load_audio, resample
from adavoice.config import MelConfig
from adavoice.data.manifest import Manifest
from adavoice.evaluate.f0 import f0_metrics
from adavoice.evaluate.mcd import mel_cepstral_distortion
from adavoice.models.griffin_lim import GriffinLim
from adavoice.models.vocoder import NeuralVocoder, Vocoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hifigan_v3 import HiFiGANV3Generator  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SEEN = ["flite:kal16", "flite:rms", "festival:kal_diphone"]
UNSEEN = ["flite:slt", "espeak:en-us+f3"]


def pick(manifest: Manifest, speaker: str, count: int, split: str | None) -> list:
    rows = [u for u in manifest if u.speaker == speaker
            and (split is None or u.extra.get("split") == split)]
    return sorted(rows, key=lambda u: u.id)[-count:]


def pesq_wb(ref: np.ndarray, hyp: np.ndarray, sr: int) -> float:
    """Wide-band PESQ at 16 kHz of two waves cut to the shorter one."""
    from pesq import pesq

    n = min(len(ref), len(hyp))
    return float(pesq(16000, resample(ref[:n], sr, 16000),
                      resample(np.asarray(hyp[:n], dtype=np.float32), sr, 16000), "wb"))


def scores(ref: np.ndarray, hyp: np.ndarray, sr: int) -> dict:
    from pystoi import stoi

    n = min(len(ref), len(hyp))
    ref, hyp = ref[:n], hyp[:n]
    pitch = f0_metrics(ref, hyp, sr)
    return {"pesq_wb": pesq_wb(ref, hyp, sr),
            "stoi": float(stoi(ref, hyp, sr, extended=False)),
            "mcd_db": mel_cepstral_distortion(ref, hyp, sr),
            "log_f0_rmse_cents": float(pitch["log_f0_rmse_cents"]),
            "vuv_error": float(pitch["vuv_error"])}


def mean_scores(rows: list[dict]) -> dict:
    keys = rows[0].keys()
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


@torch.no_grad()
def quality(groups: dict, renderers: dict, mel_cfg: MelConfig) -> dict:
    frontend = MelFrontend(mel_cfg)
    sr = mel_cfg.sample_rate_hz
    out = {}
    for group, items in groups.items():
        per = {name: [] for name in renderers}
        for _speaker, path in items:
            wave = load_audio(path, sr)
            mel = frontend(torch.from_numpy(wave))
            for name, render in renderers.items():
                per[name].append(scores(wave, render(mel).numpy(), sr))
        out[group] = {name: mean_scores(rows) for name, rows in per.items()}
        out[group]["utterances"] = len(items)
    return out


@torch.no_grad()
def speed(renderers: dict, mel_cfg: MelConfig, seconds: float = 10.0, repeats: int = 3) -> dict:
    torch.set_num_threads(1)
    frames = int(seconds * mel_cfg.sample_rate_hz / mel_cfg.hop_length)
    mel = torch.randn(mel_cfg.n_mels, frames) - 4.0
    out = {}
    for name, render in renderers.items():
        render(mel[:, :50])  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            render(mel)
            times.append(time.perf_counter() - started)
        out[name] = {"rtf_1_thread": statistics.median(times) / seconds}
    return out


def markdown(result: dict) -> str:
    lines = ["| set | vocoder | PESQ-WB | STOI | MCD dB | log-F0 RMSE cents | V/UV |",
             "|---|---|---|---|---|---|---|"]
    for group, by_name in result["quality"].items():
        for name, s in by_name.items():
            if name == "utterances":
                continue
            lines.append(f"| {group} ({by_name['utterances']} utts) | {name} | "
                         f"{s['pesq_wb']:.2f} | {s['stoi']:.3f} | {s['mcd_db']:.2f} | "
                         f"{s['log_f0_rmse_cents']:.0f} | {s['vuv_error']:.3f} |")
    if "speed" in result:
        lines += ["", "| renderer | RTF, 1 thread |", "|---|---|"]
        lines += [f"| {n} | {s['rtf_1_thread']:.4f} |" for n, s in result["speed"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocoder", default="models/demo/vocoder")
    parser.add_argument("--corpus", default="data/corpus-en")
    parser.add_argument("--targets", default="data/adapt-targets")
    parser.add_argument("--per-speaker", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "vocoder.json",
                        help="results JSON (the table goes beside it as .md)")
    parser.add_argument("--no-speed", action="store_true",
                        help="quality only (e.g. while a training run holds the CPU)")
    parser.add_argument("--neural-only", action="store_true",
                        help="leave Griffin-Lim out (a quick look at a run's checkpoint)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    vocoder, mel_cfg = Vocoder.from_dir(args.vocoder)
    corpus, targets = Manifest.load(args.corpus), Manifest.load(args.targets)
    groups = {
        "seen speakers, held-out sentences": [
            (s, corpus.audio_path(u)) for s in SEEN
            for u in pick(corpus, s, args.per_speaker, "valid")],
        "unseen voices": [(s, targets.audio_path(u)) for s in UNSEEN
                          for u in pick(targets, s, args.per_speaker, None)],
    }
    renderers = {"neural": NeuralVocoder(vocoder)}
    if not args.neural_only:
        renderers["griffin-lim-32"] = GriffinLim(mel_cfg)
    result = {"vocoder": args.vocoder, "training": json.loads(
        (Path(args.vocoder) / "config.json").read_text())["training"],
        "parameters": sum(p.numel() for p in vocoder.parameters())}
    result["quality"] = quality(groups, renderers, mel_cfg)
    if not args.no_speed:
        hifigan = HiFiGANV3Generator(n_mels=mel_cfg.n_mels).eval()
        renderers["hifigan-v3-size (random weights)"] = (
            lambda mel: hifigan(mel.unsqueeze(0))[0, 0])
        result["speed"] = speed(renderers, mel_cfg)
    result.update(machine=platform.processor() or platform.machine(),
                  command=" ".join(sys.argv))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
