"""Issue 20: does the shipped Czech recogniser read the clean unseen voices better when their mel
looks like the 8 kHz training channel? -> benchmarks/results/asr-band-limit.json

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/asr_band_limit.py [cs-demo]

The evaluation set's mels (data/bootstrap-cs/eval) are decoded greedily as they are, and with
every mel band whose centre lies above 4 kHz or 3.4 kHz set to the log floor, which is what the
damaged training voices have there (measured below, per run). CER per speaker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    import librosa
    import numpy as np
    import torch

    from adavoice.data.manifest import Manifest
    from adavoice.models.asr import Recogniser
    from adavoice.text import TextProcessor
    from adavoice.train.asr import score, token_text, transcribe_mels

    argv = list(sys.argv[1:] if argv is None else argv)
    model = argv[0] if argv else "cs-demo"
    recogniser = Recogniser.load(model, decoder="greedy")
    processor = TextProcessor.from_symbols(recogniser.symbols, emit_warnings=False)
    manifest = Manifest.load(ROOT / "data" / "bootstrap-cs" / "eval")
    rows = list(manifest)
    mels = recogniser.mels([str(manifest.audio_path(u)) for u in rows])
    cfg = recogniser.mel
    centres = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.fmin_hz,
                                      fmax=cfg.fmax_hz)[1:-1]
    floor = float(np.log(1e-5))
    damaged = torch.cat([m for m, u in zip(mels, rows, strict=True)
                         if "rate 8000" in u.speaker], dim=-1)
    refs = [token_text(processor.process(u.text).tokens) for u in rows]
    symbols = list(recogniser.symbols.symbols)
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/asr_band_limit.py "
                         + model,
              "damaged_voices_mean_log_mel_above_4200_hz": round(float(
                  damaged[torch.from_numpy(centres > 4200)].mean()), 3),
              "log_floor": round(floor, 3), "cer_by_speaker": {}}
    for cut in (None, 4000, 3400):
        masked = []
        for mel in mels:
            mel = mel.clone()
            if cut:
                mel[torch.from_numpy(centres > cut)] = floor
            masked.append(mel)
        hyps = transcribe_mels(recogniser.model, masked, symbols)
        result["cer_by_speaker"][f"above {cut} Hz masked" if cut else "as recorded"] = {
            s: round(score([refs[i] for i, u in enumerate(rows) if u.speaker == s],
                           [hyps[i] for i, u in enumerate(rows) if u.speaker == s])["cer"], 4)
            for s in sorted({u.speaker for u in rows})}
    out = ROOT / "benchmarks" / "results" / "asr-band-limit.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
