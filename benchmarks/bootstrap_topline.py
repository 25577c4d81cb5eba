"""Issue 20: the full-resource topline of the Czech bootstrap benchmark (BENCHMARKS.md "New
language"), `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap_topline.py`: the target
voice's 380 training sentences, the bootstrap's TTS recipe (init demo, phonemes, aligner kept,
binarised from step 1), 900 steps (half the TTS steps of the whole default bootstrap, for lack
of CPU time)."""
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


if __name__ == "__main__":
    from adavoice.data.manifest import Manifest
    from adavoice.models.base_model import read_base_config
    from adavoice.train.acoustic import train_base
    from adavoice.train.acoustic_losses import LossWeights
    from adavoice.train.settings import TrainConfig
    full = Manifest.load(ROOT / "data" / "bootstrap-cs" / "full")
    rows = [dataclasses.replace(u, audio=str(full.audio_path(u).resolve()))
            for u in full if u.speaker == "festival:czech_dita" and u.extra.get("split") == "train"]
    data = ROOT / "runs" / "topline-cs-data"
    Manifest(rows, data).save()
    init = ROOT / "models" / "demo"
    overrides = {k: v for k, v in read_base_config(init).acoustic.to_dict().items()
                 if k not in ("n_symbols", "n_speakers")}
    steps = 900
    train_base(data, ROOT / "runs" / "topline-cs", steps=steps, resume=True,
               train_cfg=TrainConfig.for_steps(steps, checkpoint_every=250),
               overrides=overrides, tokenizer="phonemes", init=init,
               loss_weights=LossWeights(binarization_start_step=0), progress=True)
