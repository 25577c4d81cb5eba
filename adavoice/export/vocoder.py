"""ONNX export of the iSTFT-head vocoder: ``mel (B, n_mels, T) -> wave (B, (T-1) * hop)``, with
dynamic batch and length. The model needs no wrapper: every op it uses (conv, layer norm, GELU,
exp, cos/sin, ConvTranspose) has an ONNX form, which is the point of ``ConvISTFT``.

>>> from adavoice.models.vocoder import Vocoder, VocoderConfig
>>> import tempfile, torch
>>> vocoder = Vocoder(VocoderConfig.tiny()).eval()
>>> path = export_vocoder(vocoder, Path(tempfile.mkdtemp()) / "vocoder.onnx")
>>> parity_error(vocoder, path, torch.randn(1, 80, 33)) < 1e-4
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

OPSET = 17


def export_vocoder(vocoder, path: str | Path, opset: int = OPSET) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(1, vocoder.cfg.n_mels, 16)
    tmp = path.with_suffix(".onnx.part")
    with torch.no_grad():
        torch.onnx.export(vocoder.eval(), (example,), str(tmp), input_names=["mel"],
                          output_names=["wave"], opset_version=opset, dynamo=False,
                          dynamic_axes={"mel": {0: "batch", 2: "frames"},
                                        "wave": {0: "batch", 1: "samples"}})
    tmp.replace(path)
    return path


def parity_error(vocoder, path: str | Path, mel: torch.Tensor) -> float:
    """Max |onnxruntime - torch| on ``mel``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"mel": mel.numpy().astype(np.float32)})[0]
    with torch.no_grad():
        expected = vocoder(mel).numpy()
    return float(np.abs(got - expected).max())
