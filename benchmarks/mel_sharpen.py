"""Issue 18 part 3: does sharpening the predicted mels across bands
(adavoice.models.postfilter) make the speech better to the judges? ->
benchmarks/results/mel-sharpen.json.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/mel_sharpen.py

End-to-end on the held-out sentences of benchmarks/vocoder_quality.py's corpus (never trained
on): the seen speaker flite:rms and the adaptation targets adapted with ``cln`` from their 20
clips, with and without transcripts. The same mels go through each renderer at each amount;
DistillMOS and DNSMOS OVRL, MCD against the engine's own recording of the sentence, and the
WER of PocketSphinx (an independent recogniser) on the synthesised speech over its WER on the
recording. Also the across-band detail of the mels against the recordings' (the diagnosis).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder_quality import SEEN, SR, adapted_voices, build_corpus, judged, rows  # noqa: E402

from adavoice.api import BaseModel  # noqa: E402
from adavoice.audio import MelFrontend, load_audio  # noqa: E402
from adavoice.evaluate.mcd import mel_cepstral_distortion  # noqa: E402
from adavoice.evaluate.text_metrics import wer  # noqa: E402
from adavoice.models.griffin_lim import GriffinLim  # noqa: E402
from adavoice.models.mel_postfilter import MelPostfilter  # noqa: E402
from adavoice.models.universal import HiFiGANRenderer, load_universal  # noqa: E402
from adavoice.postfilter import band_average, sharpen_mel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def detail(mel: torch.Tensor, width: int = 5) -> torch.Tensor:
    """Per band: std over the speech frames of the mel minus its ``width``-band average."""
    energy = mel.mean(0)
    speech = mel[:, energy > energy.max() - 4.6]
    return (speech - band_average(speech, width)).std(1)


def _mean(items: list[dict]) -> dict:
    """Means of the numbers, and the pooled WER of what PocketSphinx heard."""
    out = {k: round(statistics.fmean(i[k] for i in items), 3) for k in items[0]
           if k not in ("text", "heard")}
    out["wer"] = round(wer([i["text"] for i in items], [i["heard"] for i in items]), 4)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "vocoder-quality")
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--amounts", default="1.0,1.5,2.0")
    parser.add_argument("--width", type=int, default=5)
    parser.add_argument("--voices", default="flite:rms,flite:slt cln transcribed,flite:slt cln "
                        "untranscribed,espeak:en-us+f3 cln transcribed,espeak:en-us+m3 cln "
                        "transcribed")
    parser.add_argument("--postfilter", type=Path, action="append", default=[],
                        help="a trained mel post-filter folder (adavoice train postfilter): "
                        "its mels become a column 'NAME' beside the amounts (repeatable)")
    parser.add_argument("--renderers", default="universal-bf16,griffin-lim")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "mel-sharpen.json")
    args = parser.parse_args(argv)
    from adavoice.evaluate.sphinx import PocketSphinxRecognizer

    torch.manual_seed(0)
    manifest = build_corpus(args.data, seed=23)
    base = BaseModel.load("demo", precision="float32")
    frontend = MelFrontend(base.cfg.mel)
    renderers = {"universal-bf16": lambda: HiFiGANRenderer(load_universal(), "bfloat16"),
                 "griffin-lim": lambda: GriffinLim(base.cfg.mel)}
    renderers = {name: renderers[name]() for name in args.renderers.split(",")}
    postfilters = {folder.name: MelPostfilter.from_dir(folder) for folder in args.postfilter}
    amounts = [float(a) for a in args.amounts.split(",") if a]  # "": post-filters only
    wanted = args.voices.split(",")
    voices = {s: (s, None) for s in SEEN} | adapted_voices(
        base, manifest, args.data.parent / "vocoder-quality-voices")
    recognise = PocketSphinxRecognizer()
    started = time.perf_counter()
    result = {"command": "OMP_NUM_THREADS=2 .venv/bin/python benchmarks/mel_sharpen.py "
                         + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpu": platform.processor() or platform.machine(), "width": args.width,
              "voices": {}}
    for name in wanted:
        speaker, voice = voices[name]
        condition = (base.model.speaker_condition(base.speaker_id(speaker)) if voice is None
                     else voice.condition)
        variants = [f"x{a:g}" for a in amounts] + list(postfilters)
        cells = {f"{r} {v}": [] for r in renderers for v in variants}
        real_rows, real_detail, synth_detail = [], [], []
        for row in rows(manifest, speaker, "valid")[:args.sentences]:
            real = load_audio(manifest.audio_path(row), SR)
            real_rows.append({**judged(real), "text": row.text, "heard": recognise(real, SR)})
            with torch.no_grad():
                mel = base.mel(row.text, condition)
                real_detail.append(detail(frontend(torch.from_numpy(real)), args.width))
            synth_detail.append(detail(mel, args.width))
            for variant in variants:
                with torch.no_grad():
                    sharp = (postfilters[variant](mel) if variant in postfilters
                             else sharpen_mel(mel, float(variant[1:]), args.width))
                for renderer, render in renderers.items():
                    wave = render(sharp).numpy()
                    cells[f"{renderer} {variant}"].append(
                        {**judged(wave), "mcd_db": mel_cepstral_distortion(real, wave, SR),
                         "text": row.text, "heard": recognise(wave, SR)})
        summary = {"recording": _mean(real_rows)}
        for cell, items in cells.items():
            summary[cell] = _mean(items)
            summary[cell]["wer_ratio"] = round(summary[cell]["wer"]
                                               / max(summary["recording"]["wer"], 0.01), 3)
        ratio = torch.stack(real_detail).mean(0) / torch.stack(synth_detail).mean(0)
        summary["detail_ratio_bands"] = [round(float(x), 2) for x in ratio]
        result["voices"][name] = summary
        print(name, json.dumps({k: v for k, v in summary.items() if k != "detail_ratio_bands"}),
              flush=True)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
