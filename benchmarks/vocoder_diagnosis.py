"""Where the neural vocoder loses PESQ: its magnitude or its phase? -> JSON (+ printed).

    .venv/bin/python benchmarks/vocoder_diagnosis.py --vocoder runs/vocoder-small \
        --out benchmarks/results/vocoder_diagnosis.json

On the unseen voices of ``benchmarks/vocoder.py`` (copy synthesis from the real audio's mel):
- PESQ-WB of: the neural vocoder; Griffin-Lim (32 iterations) on the mel's pseudo-inverse
  magnitude, as shipped; Griffin-Lim (32 iterations, same settings, no sharpening) on the
  neural vocoder's own magnitude head; the neural vocoder with its magnitude sharpened
  (``magnitude ** 1.2``, energy kept), the trick the Griffin-Lim renderer uses;
- per band, the mean |log magnitude error| and its signed mean against the real STFT, over
  frames with speech, for the neural output, its magnitude head and the mel pseudo-inverse;
- phase errors against the real STFT (``adavoice.train.vocoder.phase_losses``: instantaneous
  phase, group delay, frame-to-frame advance; radians, pi / 2 for random phases), every bin
  alike and weighted by the real magnitude, for the neural phase head and for the phase of
  Griffin-Lim's output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

from adavoice.audio import MelFrontend, load_audio
from adavoice.data.manifest import Manifest
from adavoice.models.griffin_lim import GriffinLim
from adavoice.models.vocoder import Vocoder
from adavoice.train.vocoder import phase_losses

sys.path.insert(0, str(Path(__file__).parent))
from vocoder import UNSEEN, pesq_wb, pick  # noqa: E402

BANDS_HZ = ((0, 1000), (1000, 2000), (2000, 4000), (4000, 8000))


def band_errors(estimate: torch.Tensor, truth: torch.Tensor, sr: int) -> dict:
    frames = min(estimate.shape[-1], truth.shape[-1])
    estimate, truth = estimate[:, :frames], truth[:, :frames]
    energy = (truth ** 2).sum(0)
    speech = energy > 1e-3 * energy.max()
    diff = (torch.log(estimate + 1e-5) - torch.log(truth + 1e-5))[:, speech]
    freqs = torch.linspace(0, sr / 2, truth.shape[0])
    out = {}
    for low, high in BANDS_HZ:
        band = diff[(freqs >= low) & (freqs < high)]
        out[f"{low}-{high}"] = {"abs": float(band.abs().mean()), "signed": float(band.mean())}
    return out


def phase_errors(phase: torch.Tensor, real: torch.Tensor) -> dict:
    """Uniform and magnitude-weighted phase errors of ``phase`` (F, T) against ``real``."""
    frames = min(phase.shape[-1], real.shape[-1])
    phase, real = phase[None, :, :frames], real[None, :, :frames]
    return {weighting: {k: float(v) for k, v in phase_losses(phase, torch.angle(real),
                                                             weight).items()}
            for weighting, weight in (("uniform", None), ("magnitude", real.abs()))}


@torch.no_grad()
def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocoder", default="models/demo/vocoder")
    parser.add_argument("--targets", default="data/adapt-targets")
    parser.add_argument("--per-speaker", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    vocoder, mel_cfg = Vocoder.from_dir(args.vocoder)
    vocoder.eval()
    sr, n_fft, hop = mel_cfg.sample_rate_hz, mel_cfg.n_fft, mel_cfg.hop_length
    frontend, griffin_lim = MelFrontend(mel_cfg), GriffinLim(mel_cfg)
    window = torch.hann_window(n_fft)
    targets = Manifest.load(args.targets)
    paths = [targets.audio_path(u) for s in UNSEEN for u in pick(targets, s, args.per_speaker,
                                                                  None)]
    pesq_rows, band_rows, phase_rows = {}, {}, {}
    for path in paths:
        wave = load_audio(path, sr)
        real = frontend.spectrum(torch.from_numpy(wave))
        truth = real.abs()
        mel = frontend.from_magnitude(truth)
        magnitude, phase = (t[0] for t in vocoder.spectrum(mel.unsqueeze(0)))
        length = (mel.shape[-1] - 1) * hop
        sharp = magnitude ** 1.2
        sharp = sharp * (magnitude.pow(2).sum() / sharp.pow(2).sum()).sqrt()
        neural = vocoder(mel.unsqueeze(0))[0]
        renders = {
            "neural": neural,
            "griffin-lim-32 on the mel": griffin_lim(mel),
            "griffin-lim-32 on the neural magnitude": AF.griffinlim(
                magnitude, window=window, n_fft=n_fft, hop_length=hop, win_length=n_fft,
                power=1.0, n_iter=32, momentum=0.99, length=length, rand_init=False),
            "neural, magnitude ** 1.2": vocoder.istft(sharp.unsqueeze(0), phase.unsqueeze(0))[0],
        }
        for name, render in renders.items():
            pesq_rows.setdefault(name, []).append(pesq_wb(wave, render.clamp(-1, 1).numpy(), sr))
        phases = {"neural phase head": phase,
                  "griffin-lim-32 on the mel": torch.angle(frontend.spectrum(
                      renders["griffin-lim-32 on the mel"]))}
        for name, estimate in phases.items():
            phase_rows.setdefault(name, []).append(phase_errors(estimate, real))
        pseudo_inverse = griffin_lim.magnitude(mel)
        spectra = {"neural output": frontend.magnitude(neural),
                   "neural magnitude head": magnitude, "mel pseudo-inverse": pseudo_inverse}
        for name, spectrum in spectra.items():
            band_rows.setdefault(name, []).append(band_errors(spectrum, truth, sr))
    result = {
        "vocoder": args.vocoder, "utterances": len(paths), "voices": UNSEEN,
        "pesq_wb": {k: float(np.mean(v)) for k, v in pesq_rows.items()},
        "log_magnitude_error_by_band": {
            name: {band: {key: float(np.mean([r[band][key] for r in rows]))
                          for key in ("abs", "signed")} for band in rows[0]}
            for name, rows in band_rows.items()},
        "phase_error_rad": {
            name: {weighting: {term: float(np.mean([r[weighting][term] for r in rows]))
                               for term in rows[0][weighting]} for weighting in rows[0]}
            for name, rows in phase_rows.items()},
        "command": "python benchmarks/vocoder_diagnosis.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
