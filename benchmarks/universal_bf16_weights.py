"""A probe for issue 18 ("make the teacher cheaper"): the universal generator with its weights
cast to bfloat16 once, against the renderer's bfloat16 autocast (which casts the float32
weights at every call), at one thread on one demo sentence in ``flite:rms``. It reports the
RTF of each and the SNR of each wave against the float32 renderer's wave ->
benchmarks/results/universal-bf16-weights.json. Speed only, plus a waveform check: no
listener-model judgement, so nothing ships on it.

The first version compared the renderer (which padded this 800-frame mel to a 1,024-frame
pass) against one 800-frame pass, and credited the cast with the padding's cost. The row
``autocast, one pass`` is the fair comparison (twentieth session, BENCHMARKS.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_bf16_weights.py
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_speed import TEXT, cpu  # noqa: E402
from universal_speed import best_of  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "universal-bf16-weights.json"


def main() -> int:
    from adavoice.models.base_model import BaseModel
    from adavoice.models.universal import HiFiGANRenderer, load_universal

    torch.set_num_threads(1)
    base = BaseModel.load("demo")
    condition = base.model.speaker_condition(base.speaker_id("flite:rms"))
    with torch.inference_mode():
        mel = base.mel(TEXT, condition)
    seconds = (mel.shape[-1] - 1) * base.cfg.mel.hop_length / base.sample_rate
    generator = load_universal()
    reference = HiFiGANRenderer(generator, "float32")
    autocast = HiFiGANRenderer(generator, "bfloat16")
    cast = copy.deepcopy(generator).bfloat16().eval()

    def bf16_weights():  # one whole pass, weights and activations in bfloat16
        with torch.inference_mode():
            return cast(mel.bfloat16()[None]).float().clamp(-1.0, 1.0)[0]

    def autocast_one_pass():  # the same single pass, float32 weights under autocast
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return generator(mel[None]).float().clamp(-1.0, 1.0)[0]

    waves = {"float32": reference(mel), "autocast": autocast(mel), "bf16_weights": bf16_weights()}
    n = min(len(w) for w in waves.values())
    clean = waves["float32"][:n]

    def snr(wave, against=clean):
        return round(float(10 * torch.log10(against.pow(2).sum()
                                            / (wave[:n] - against).pow(2).sum())), 2)

    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_bf16_weights.py",
              "cpu": cpu(), "threads": 1, "audio_s": round(seconds, 2),
              "mel_frames": mel.shape[-1],
              "rtf": {"autocast (the shipped bfloat16 renderer, its own passes)": round(
                          best_of(lambda: autocast(mel), 3) / seconds, 4),
                      "autocast, one pass": round(best_of(autocast_one_pass, 3) / seconds, 4),
                      "weights cast to bfloat16 once, one pass": round(
                          best_of(bf16_weights, 3) / seconds, 4)},
              "snr_db_against_float32": {"autocast": snr(waves["autocast"]),
                                         "bf16_weights": snr(waves["bf16_weights"])},
              "snr_db_bf16_weights_against_autocast": snr(waves["bf16_weights"],
                                                          waves["autocast"][:n])}
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
