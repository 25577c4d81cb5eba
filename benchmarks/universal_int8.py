"""The universal vocoder in int8 (issue 18, "make the teacher itself cheaper"; int8 had not been
tried) -> benchmarks/results/universal-int8.json

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_int8.py

The ONNX graph of the universal HiFi-GAN, statically quantised by onnxruntime (QDQ, weights
int8 per channel, activations uint8, calibrated on 16 crops of 128 frames of real speech from
data/fast-vocoder-corpus) with MinMax and with 99.99th-percentile calibration. For each:
speed at one thread on one 8.4 s mel beside the float32 graph, mel L1 against the torch
teacher on 6 held-out utterances of the same corpus, and DistillMOS on copy-synthesis of 4
clips of each voice no vocoder here trained on (data/vocoder-quality) beside torch bfloat16.
"""

from __future__ import annotations

import json
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from adavoice.audio import MelFrontend, load_audio
from adavoice.config import MelConfig
from adavoice.evaluate.mos import distillmos_score
from adavoice.export.vocoder import export_vocoder
from adavoice.models.universal import HiFiGANRenderer, load_universal

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "universal-int8.json"
VOICES = ["flite:slt", "espeak:en-us+f3", "flite:awb", "festival:cmu_us_slt_arctic_hts"]


def main() -> int:
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    torch.set_num_threads(1)
    frontend = MelFrontend(MelConfig())
    corpus = ROOT / "data" / "fast-vocoder-corpus"
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    random.Random(1).shuffle(rows)

    def mel_of(row):
        samples, _ = sf.read(corpus / row["audio"], dtype="float32")
        return frontend(torch.from_numpy(samples))

    crops = [m[:, :128].numpy()[None] for m in map(mel_of, rows[:40]) if m.shape[-1] >= 128][:16]
    held = [mel_of(row) for row in rows[100:106]]
    teacher = load_universal().eval()

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"mel": c} for c in crops])

        def get_next(self):
            return next(self.items, None)

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    mel = (torch.randn(1, 80, 725) - 5.0).numpy()
    audio_s = 724 * 256 / 22050
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_int8.py",
              "cpu": platform.processor() or platform.machine(), "graphs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_vocoder(teacher, Path(tmp) / "universal.onnx")
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))
        graphs = {"float32": fp32}
        for name, method, extra in (("int8-minmax", CalibrationMethod.MinMax, {}),
                                    ("int8-percentile", CalibrationMethod.Percentile,
                                     {"CalibPercentile": 99.99})):
            graphs[name] = Path(tmp) / f"{name}.onnx"
            quantize_static(str(prepared), str(graphs[name]), Crops(),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            calibrate_method=method, extra_options=extra)
        manifest = ROOT / "data" / "vocoder-quality" / "manifest.jsonl"
        clips = [json.loads(line) for line in manifest.read_text().splitlines()]
        bf16 = HiFiGANRenderer(teacher, "bfloat16")
        for name, path in graphs.items():
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

            def render(m, session=session):
                return session.run(None, {"mel": m.numpy()[None].astype(np.float32)})[0][0]

            session.run(None, {"mel": mel})
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                session.run(None, {"mel": mel})
                best = min(best, time.perf_counter() - started)
            error = 0.0
            with torch.no_grad():
                for m in held:
                    error += float((frontend(torch.from_numpy(render(m)))
                                    - frontend(teacher(m[None])[0])).abs().mean())
            row = {"rtf_one_thread": round(best / audio_s, 4),
                   "mel_l1_vs_torch_teacher": round(error / len(held), 4), "distillmos": {}}
            for voice in VOICES:
                picked = [c for c in clips if c["speaker"] == voice and c["split"] == "valid"][:4]
                scores = {"graph": [], "torch_bfloat16": []}
                for clip in picked:
                    m = frontend(torch.from_numpy(load_audio(manifest.parent / clip["audio"])))
                    scores["graph"].append(distillmos_score(np.clip(render(m), -1, 1), 22050))
                    if name == "float32":
                        scores["torch_bfloat16"].append(distillmos_score(bf16(m).numpy(), 22050))
                row["distillmos"][voice] = {k: round(float(np.mean(v)), 3)
                                            for k, v in scores.items() if v}
            result["graphs"][name] = row
            print(name, json.dumps(row), flush=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
