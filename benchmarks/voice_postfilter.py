"""Issue 18 part 3: does a voice's own post-filter values (adavoice.adaptation.postfilter,
tuned at adaptation on the voice's 20 clips) bring adapted voices nearer their recordings than
the base's post-filter alone? -> benchmarks/results/voice-postfilter.json.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/voice_postfilter.py

The held-out sentences and adapted voices of benchmarks/mel_sharpen.py (never trained on):
each target is adapted (``cln``) from its 20 clips with the shipped defaults plus
``postfilter_steps`` (``--steps``, 1000; the adapter's default is 0), which tunes the voice's
post-filter values; the same voice is also rendered with the base's values
(``dataclasses.replace(condition, postfilter=None)``), so the two columns differ in those 417
numbers only. Universal vocoder in bfloat16 (``auto`` on this CPU). DistillMOS and DNSMOS OVRL,
MCD against the engine's own recording, and PocketSphinx WER (an independent recogniser).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder_quality import SR, build_corpus, judged, rows  # noqa: E402

import adavoice  # noqa: E402
from adavoice.adaptation.config import AdapterConfig  # noqa: E402
from adavoice.api import BaseModel  # noqa: E402
from adavoice.audio import load_audio  # noqa: E402
from adavoice.evaluate.mcd import mel_cepstral_distortion  # noqa: E402
from adavoice.evaluate.text_metrics import wer  # noqa: E402
from adavoice.models.universal import HiFiGANRenderer, load_universal  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VOICES = ("flite:slt transcribed", "flite:slt untranscribed", "espeak:en-us+f3 transcribed",
          "espeak:en-us+m3 transcribed")


def _mean(items: list[dict], texts: list[str]) -> dict:
    out = {k: round(statistics.fmean(i[k] for i in items), 3) for k in items[0] if k != "heard"}
    out["wer"] = round(wer(texts, [i["heard"] for i in items]), 4)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "vocoder-quality")
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--voices", default=",".join(VOICES))
    parser.add_argument("--steps", type=int, default=1000,
                        help="postfilter_steps (the adapter's default is 0: off)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--segment", type=int, default=None)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "voice-postfilter.json")
    args = parser.parse_args(argv)
    from adavoice.evaluate.sphinx import PocketSphinxRecognizer

    torch.manual_seed(0)
    manifest = build_corpus(args.data, seed=23)
    base = BaseModel.load("demo", precision="float32")
    overrides = {k: v for k, v in {"postfilter_steps": args.steps,
                                   "postfilter_learning_rate": args.learning_rate,
                                   "postfilter_batch": args.batch,
                                   "postfilter_segment": args.segment}.items() if v is not None}
    cfg = AdapterConfig.for_kind("cln", **overrides)
    render = HiFiGANRenderer(load_universal(), "bfloat16")
    recognise = PocketSphinxRecognizer()
    started = time.perf_counter()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    result = {"command": (f"OMP_NUM_THREADS={threads} " if threads else "")
              + ".venv/bin/python benchmarks/voice_postfilter.py "
              + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpu": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(),
              "settings": {k: v for k, v in cfg.to_dict().items() if k.startswith("postfilter")},
              "voices": {}}
    for name in args.voices.split(","):
        target, mode = name.split(" ")
        clips = args.data.parent / "vocoder-quality-voices" / f"clips-{target.replace(':', '_')}"
        before = time.perf_counter()
        voice = adavoice.adapt(base, clips, config=cfg, untranscribed=mode == "untranscribed",
                               progress=False)
        adapt_s = time.perf_counter() - before
        conditions = {"base values": dataclasses.replace(voice.condition, postfilter=None),
                      "own values": voice.condition}
        cells = {k: [] for k in ["recording", *conditions]}
        texts = []
        for row in rows(manifest, target, "valid")[:args.sentences]:
            real = load_audio(manifest.audio_path(row), SR)
            texts.append(row.text)
            cells["recording"].append({**judged(real), "heard": recognise(real, SR)})
            with torch.no_grad():
                mel = base.mel(row.text, voice.condition)  # the same mel for both columns
                for column, condition in conditions.items():
                    wave = render(base.mel_filter("universal", condition)(mel)).numpy()
                    cells[column].append({**judged(wave),
                                          "mcd_db": mel_cepstral_distortion(real, wave, SR),
                                          "heard": recognise(wave, SR)})
        summary = {column: _mean(items, texts) for column, items in cells.items()}
        for column in conditions:
            summary[column]["distillmos_vs_recording"] = round(
                summary[column]["distillmos"] / summary["recording"]["distillmos"], 3)
        summary["adaptation"] = {"wall_s": round(adapt_s, 1),
                                 "postfilter": voice.config["postfilter"],
                                 "stored_parameters": voice.stored_parameters}
        result["voices"][f"{target} cln {mode}"] = summary
        print(name, json.dumps(summary), flush=True)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
