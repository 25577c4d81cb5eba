"""Which renderer people would rather hear, and what it costs (issue 18) ->
benchmarks/results/vocoder-quality.json (+ a Markdown table printed for BENCHMARKS.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vocoder_quality.py

1. Test corpus (built once into data/vocoder-quality with `adavoice corpus build`, seed 23):
   per voice 40 held-out sentences (the corpus's valid split, never trained on) and 20 others
   (adaptation clips). Voices: flite:rms (a base speaker), the adaptation targets flite:slt,
   espeak:en-us+f3, espeak:en-us+m3, and flite:awb and festival slt HTS (outside the base corpus).
2. Copy-synthesis of voices no vocoder here trained on (`--copy` held-out clips each): the
   recording's own mel through Griffin-Lim, universal float32 and universal bfloat16: DistillMOS,
   DNSMOS OVRL, PESQ-WB, STOI, MCD (and the judges on the recording itself).
3. End-to-end on the held-out sentences: the seen speaker, and each target adapted with `cln`
   from its 20 clips with and without transcripts; every renderer on the same mels; the
   judges beside the engine's own recording of the same sentence; MCD against it.
4. Speed at one thread, side by side on one ~10 s utterance: acoustic model, each renderer.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import adavoice
from adavoice.api import BaseModel
from adavoice.audio import MelFrontend, load_audio
from adavoice.data.manifest import Manifest
from adavoice.evaluate.mcd import mel_cepstral_distortion
from adavoice.evaluate.mos import predicted_mos
from adavoice.models.griffin_lim import GriffinLim
from adavoice.models.universal import HiFiGANRenderer, load_universal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder import scores  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEN = ["flite:rms"]
TARGETS = ["flite:slt", "espeak:en-us+f3", "espeak:en-us+m3"]
OUTSIDE = ["flite:awb", "festival:cmu_us_slt_arctic_hts"]
COPY_VOICES = ["flite:slt", "espeak:en-us+f3", "flite:awb", "festival:cmu_us_slt_arctic_hts"]
SR = 22050


def build_corpus(folder: Path, seed: int) -> Manifest:
    if not (folder / "manifest.jsonl").is_file():
        subprocess.run([sys.executable, "-m", "adavoice.cli.main", "corpus", "build", str(folder),
                        "--language", "en", "--utterances", "60", "--valid-share", "0.67",
                        "--seed", str(seed), "--no-progress", "--voices",
                        *SEEN, *TARGETS, *OUTSIDE], check=True, cwd=ROOT)
    return Manifest.load(folder)


def rows(manifest: Manifest, speaker: str, split: str) -> list:
    return sorted((u for u in manifest if u.speaker == speaker and u.extra.get("split") == split),
                  key=lambda u: u.id)


def judged(wave: np.ndarray) -> dict:
    scores_ = predicted_mos(wave, SR)
    return {"distillmos": scores_["distillmos"], "dnsmos_ovrl": scores_["dnsmos_ovrl"]}


def mean_rows(items: list[dict]) -> dict:
    keys = items[0].keys()
    return {k: round(statistics.fmean(i[k] for i in items if i[k] is not None), 3) for k in keys}


def copy_synthesis(manifest: Manifest, renderers: dict, count: int) -> dict:
    frontend = MelFrontend(adavoice.BaseModel.shared("demo").cfg.mel)
    result = {}
    for voice in COPY_VOICES:
        per = {name: [] for name in ["recording", *renderers]}
        for row in rows(manifest, voice, "valid")[:count]:
            wave = load_audio(manifest.audio_path(row), SR)
            per["recording"].append(judged(wave))
            with torch.no_grad():
                mel = frontend(torch.from_numpy(wave))
            for name, render in renderers.items():
                hyp = render(mel).numpy()
                item = {**judged(hyp), **scores(wave, hyp, SR)}
                per[name].append({k: item[k] for k in ("distillmos", "dnsmos_ovrl", "pesq_wb",
                                                       "stoi", "mcd_db")})
        result[voice] = {name: mean_rows(items) for name, items in per.items()}
        print(voice, json.dumps(result[voice]), flush=True)
    return result


def adapted_voices(base: BaseModel, manifest: Manifest, work: Path) -> dict:
    voices = {}
    for target in TARGETS:
        clips = work / f"clips-{target.replace(':', '_')}"
        if not clips.exists():
            clips.mkdir(parents=True)
            lines = []
            for row in rows(manifest, target, "train")[:20]:
                link = clips / Path(row.audio).name
                link.symlink_to(manifest.audio_path(row).resolve())
                lines.append(f"{link.stem}|{row.text}")
            (clips / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for untranscribed in (False, True):
            name = f"{target} cln {'untranscribed' if untranscribed else 'transcribed'}"
            voices[name] = (target, adavoice.adapt(base, clips, untranscribed=untranscribed,
                                                   progress=False))
    return voices


def end_to_end(base: BaseModel, manifest: Manifest, voices: dict, renderers: dict,
               count: int) -> dict:
    speakers = {s: (s, None) for s in SEEN} | voices
    result = {}
    for name, (speaker, voice) in speakers.items():
        per = {k: [] for k in ["recording", *renderers]}
        for row in rows(manifest, speaker, "valid")[:count]:
            real = load_audio(manifest.audio_path(row), SR)
            per["recording"].append(judged(real))
            condition = (base.model.speaker_condition(base.speaker_id(speaker)) if voice is None
                         else voice.condition)
            with torch.no_grad():
                mel = base.mel(row.text, condition)
            for renderer, render in renderers.items():
                hyp = render(mel).numpy()
                per[renderer].append({**judged(hyp),
                                      "mcd_db": mel_cepstral_distortion(real, hyp, SR)})
        result[name] = {k: mean_rows(v) for k, v in per.items()}
        print(name, json.dumps(result[name]), flush=True)
    return result


def speed(base: BaseModel, renderers: dict) -> dict:
    torch.set_num_threads(1)
    text = ("The quick brown fox jumps over the lazy dog, and then it runs far away "
            "across the fields, past the river and into the quiet forest beyond the hills.")
    condition = base.model.speaker_condition(0)

    def timed(fn, repeats=3):
        fn()
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - started)
        return best, out

    acoustic_s, mel = timed(lambda: base.mel(text, condition))
    audio_s = (mel.shape[-1] - 1) * base.cfg.mel.hop_length / SR
    result = {"audio_s": round(audio_s, 2), "acoustic_rtf": round(acoustic_s / audio_s, 4)}
    for name, render in renderers.items():
        seconds, _ = timed(lambda render=render: render(mel))
        result[f"{name}_rtf"] = round(seconds / audio_s, 4)
        result[f"pipeline_{name}_rtf"] = round((seconds + acoustic_s) / audio_s, 4)
    print(json.dumps(result), flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "vocoder-quality")
    parser.add_argument("--copy", type=int, default=10, help="copy-synthesis clips per voice")
    parser.add_argument("--sentences", type=int, default=40, help="held-out sentences per voice")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "vocoder-quality.json")
    parser.add_argument("--fast", type=Path, default=None,
                        help="a trained fast vocoder folder (iSTFT or shrunk HiFi-GAN) to "
                        "judge as 'fast'")
    parser.add_argument("--renderers", default="griffin-lim,universal-fp32,universal-bf16",
                        help="which of griffin-lim, universal-fp32, universal-bf16 to run")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    manifest = build_corpus(args.data, seed=23)
    base = BaseModel.load("demo", precision="float32")
    generator = load_universal()
    renderers = {"griffin-lim": GriffinLim(base.cfg.mel),
                 "universal-fp32": HiFiGANRenderer(generator, "float32"),
                 "universal-bf16": HiFiGANRenderer(generator, "bfloat16")}
    renderers = {k: v for k, v in renderers.items() if k in args.renderers.split(",")}
    if args.fast is not None:
        from adavoice.config import MelConfig
        from adavoice.models.vocoder import load_renderer

        renderers["fast"] = load_renderer(args.fast, MelConfig())
    started = time.perf_counter()
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vocoder_quality.py "
                         + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpu": platform.processor() or platform.machine(),
              "speed_one_thread": speed(base, renderers)}
    if isinstance(renderers.get("fast"), HiFiGANRenderer):  # a shrunk HiFi-GAN as fast
        result["fast_precision"] = renderers["fast"].precision
    result["copy_synthesis"] = copy_synthesis(manifest, renderers, args.copy)
    voices = adapted_voices(base, manifest, args.data.parent / "vocoder-quality-voices")
    result["end_to_end"] = end_to_end(base, manifest, voices, renderers, args.sentences)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
