"""Issue 20: do interpolated speaker conditions make the TTS-spoken ASR data generalise to
unseen voices? A one-round control on the Czech bootstrap's fine-tune stage
(`runs/bootstrap-cs`):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/interpolated_voices.py --arm rotation
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/interpolated_voices.py --arm interpolated

Both arms do what round 1's ASR half does: the fine-tune TTS speaks round 1's 600 unpaired
sentences, and the ASR trains 300 steps from the fine-tune ASR on the real pairs plus those
mels. ``rotation``: each sentence in one of the TTS's seven voices (what the bootstrap does).
``interpolated``: each sentence in a mix ``w a + (1 - w) b`` of two different voices' speaker
and utterance vectors, ``w`` uniform in [0, 1]. Scored like the bootstrap's rows ->
benchmarks/results/interpolated-voices-ARM.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def interpolated_items(b, tts_dir: Path, texts: list[str], seed: int) -> list:
    from adavoice.errors import EmptyTextError
    from adavoice.models.acoustic import SpeakerCondition
    from adavoice.models.base_model import BaseModel
    from adavoice.train.asr import token_text

    base = BaseModel.load(tts_dir, precision="float32")
    rng = random.Random(seed)
    n = len(base.cfg.speakers)
    processor, items = b._asr_processor(), []
    for text in texts:
        first, second = rng.sample(range(n), 2)
        w = rng.random()
        a, c = base.model.speaker_condition(first), base.model.speaker_condition(second)
        condition = SpeakerCondition(w * a.speaker_vector + (1 - w) * c.speaker_vector,
                                     w * a.utterance_vector + (1 - w) * c.utterance_vector)
        try:
            processed = processor.process(text)
        except EmptyTextError:
            continue
        with torch.no_grad():
            mel = base.mel(text, condition)
        items.append((mel, list(processed.ids), token_text(processed.tokens)))
    return items


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--arm", choices=["rotation", "interpolated"], required=True)
    args = parser.parse_args()
    from adavoice.bootstrap import Bootstrap, BootstrapConfig

    d = ROOT / "data" / "bootstrap-cs"
    run = ROOT / "runs" / "bootstrap-cs"
    b = Bootstrap("cs", run, d / "paired", d / "unpaired", d / "unpaired-text.txt",
                  low_quality=d / "low-quality", evaluation=[d / "eval"],
                  config=BootstrapConfig(), progress=True)
    finetune = run / "work" / "finetune"
    texts = b._text_slice(0, b.cfg.texts_per_round)  # round 1's sentences
    spoken = (b._speak_many_voices(finetune / "tts", texts, 1) if args.arm == "rotation"
              else interpolated_items(b, finetune / "tts", texts, 1))
    folder = ROOT / "runs" / "control-cs" / f"round1-asr-{args.arm}"
    b._train_asr(folder, b._real_items() + spoken, finetune / "asr", b.cfg.asr_round_steps)
    scores = b.asr_scores(folder / "asr")
    trained = b.inputs.trained_speakers
    by_speaker = scores["asr_cer_eval_by_speaker"]
    seen = [v for s, v in by_speaker.items() if s in trained]
    unseen = [v for s, v in by_speaker.items() if s not in trained]
    row = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/interpolated_voices.py "
                      f"--arm {args.arm}", "arm": args.arm, "synthetic_for_asr": len(spoken),
           "asr_cer_target": scores["asr_cer_target"], "by_speaker": by_speaker,
           "asr_cer_seen": round(sum(seen) / len(seen), 4),
           "asr_cer_unseen": round(sum(unseen) / len(unseen), 4)}
    (ROOT / "benchmarks" / "results" / f"interpolated-voices-{args.arm}.json").write_text(
        json.dumps(row, indent=2) + "\n")
    print(json.dumps(row))
