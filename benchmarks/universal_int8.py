"""The universal vocoder in int8 (issue 18, "make the teacher itself cheaper"; int8 had not been
tried) -> benchmarks/results/universal-int8.json

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_int8.py

The ONNX graph of the universal HiFi-GAN, statically quantised by onnxruntime (QDQ, weights
int8 per channel, activations uint8, calibrated on 16 crops of 128 frames of real speech from
data/fast-vocoder-corpus) with MinMax and with 99.99th-percentile calibration. For each:
speed at one thread on one 8.4 s mel beside the float32 graph, mel L1 against the torch
teacher on 6 held-out utterances of the same corpus, and copy-synthesis of 4 clips of each
voice no vocoder here trained on, judged as `vocoder_quality.py` judges it (its
``copy_synthesis``: DistillMOS, DNSMOS, PESQ-WB, STOI, MCD), beside torch bfloat16.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from adavoice.data.manifest import Manifest
from adavoice.export.vocoder import export_vocoder
from adavoice.models.universal import HiFiGANRenderer, load_universal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from shrink_probe import corpus_mels, mel_l1  # noqa: E402
from universal_speed import best_of  # noqa: E402
from vocoder_quality import copy_synthesis  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "universal-int8.json"


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
    calibration, held = corpus_mels(128, 6)
    teacher = load_universal().eval()
    with torch.no_grad():
        targets = [teacher(m[None])[0] for m in held]

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"mel": c[None].numpy()} for c in calibration])

        def get_next(self):
            return next(self.items, None)

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    mel = (torch.randn(1, 80, 725) - 5.0).numpy()
    audio_s = 724 * 256 / 22050
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/universal_int8.py",
              "cpu": platform.processor() or platform.machine(), "graphs": {}}
    renderers = {}
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
        for name, path in graphs.items():
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

            def render(m, session=session):
                wave = session.run(None, {"mel": m.numpy()[None].astype(np.float32)})[0][0]
                return torch.from_numpy(wave).clamp(-1.0, 1.0)

            renderers[f"onnx-{name}"] = render
            result["graphs"][name] = {
                "rtf_one_thread": round(best_of(lambda s=session: s.run(None, {"mel": mel}))
                                        / audio_s, 4),
                "mel_l1_vs_torch_teacher": round(mel_l1([render(m) for m in held], targets), 4)}
            print(name, json.dumps(result["graphs"][name]), flush=True)
        renderers["torch-bfloat16"] = HiFiGANRenderer(teacher, "bfloat16")
        manifest = Manifest.load(ROOT / "data" / "vocoder-quality")
        result["copy_synthesis"] = copy_synthesis(manifest, renderers, 4)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
