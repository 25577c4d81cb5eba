"""Issue 20: the full-resource topline of a bootstrap benchmark (BENCHMARKS.md "New language"),
`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap_topline.py [--language cs|it]`: every
training sentence the corpus rendered for the target voice (data/bootstrap-LANG/full, split
train), the bootstrap's TTS recipe (init demo, phonemes, aligner kept, binarised from step 1),
900 steps (half the TTS steps of the whole default bootstrap, for lack of CPU time), into
runs/topline-LANG."""
import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", default="cs")
    parser.add_argument("--steps", type=int, default=900)
    args = parser.parse_args()
    from adavoice.data.manifest import Manifest
    from adavoice.models.base_model import read_base_config
    from adavoice.train.acoustic import train_base
    from adavoice.train.acoustic_losses import LossWeights
    from adavoice.train.settings import TrainConfig
    corpus = ROOT / "data" / f"bootstrap-{args.language}"
    target = Manifest.load(corpus / "paired")[0].speaker  # the paired data is the target's
    full = Manifest.load(corpus / "full")
    rows = [dataclasses.replace(u, audio=str(full.audio_path(u).resolve()))
            for u in full if u.speaker == target and u.extra.get("split") == "train"]
    data = ROOT / "runs" / f"topline-{args.language}-data"
    Manifest(rows, data).save()
    init = ROOT / "models" / "demo"
    overrides = {k: v for k, v in read_base_config(init).acoustic.to_dict().items()
                 if k not in ("n_symbols", "n_speakers")}
    print(f"topline {args.language}: {len(rows)} sentences of {target}", flush=True)
    train_base(data, ROOT / "runs" / f"topline-{args.language}", steps=args.steps, resume=True,
               train_cfg=TrainConfig.for_steps(args.steps, checkpoint_every=250),
               overrides=overrides, tokenizer="phonemes", init=init,
               loss_weights=LossWeights(binarization_start_step=0), progress=True)
