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

import copy
import warnings
from pathlib import Path

import numpy as np
import torch

OPSET = 17


class HalfVocoder(torch.nn.Module):
    """A vocoder copy in float16 behind float32 edges (the GPU graph)."""

    def __init__(self, vocoder: torch.nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(vocoder).half()
        self.cfg = vocoder.cfg

    def forward(self, mel):
        return self.inner(mel.half()).float()


def export_vocoder(vocoder, path: str | Path, half: bool = False, opset: int = OPSET) -> Path:
    """Write ``path`` (replaced atomically): float32, or float16 inside with ``half``."""
    return _export_mel_graph(vocoder, path, half, opset, "wave", {0: "batch", 1: "samples"})


def _export_mel_graph(module, path: str | Path, half: bool, opset: int, output: str,
                      output_axes: dict) -> Path:
    """``module`` (input ``mel (B, n_mels, T)``, dynamic batch and length) as an ONNX graph
    at ``path``, replaced atomically; float16 inside with ``half``."""
    from adavoice.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = HalfVocoder(module) if half else module
    example = torch.randn(1, module.cfg.n_mels, 16) - 5
    with torch.no_grad(), warnings.catch_warnings(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(wrapped.eval(), (example,), str(tmp), input_names=["mel"],
                          output_names=[output], opset_version=opset, dynamo=False,
                          dynamic_axes={"mel": {0: "batch", 2: "frames"}, output: output_axes})
    return path


def parity_error(vocoder, path: str | Path, mel: torch.Tensor) -> float:
    """Max |onnxruntime - torch| on ``mel``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"mel": mel.numpy().astype(np.float32)})[0]
    with torch.no_grad():
        expected = vocoder(mel).numpy()
    return float(np.abs(got - expected).max())


def export_postfilter(postfilter, path: str | Path, half: bool = False,
                      opset: int = OPSET) -> Path:
    """A learned mel post-filter (adavoice.models.mel_postfilter) as ``mel (B, n_mels, T) ->
    filtered (B, n_mels, T)``; float16 inside with ``half``."""
    return _export_mel_graph(postfilter, path, half, opset, "filtered",
                             {0: "batch", 2: "frames"})
