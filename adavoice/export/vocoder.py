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
    return _export_mel_graph(HalfVocoder(vocoder) if half else vocoder, vocoder.cfg.n_mels,
                             path, opset, "wave", {0: "batch", 1: "samples"})


def _export_mel_graph(module, n_mels: int, path: str | Path, opset: int, output: str,
                      output_axes: dict, extra: dict[str, torch.Tensor] | None = None) -> Path:
    """``module`` (input ``mel (B, n_mels, T)`` with dynamic batch and length, then the
    ``extra`` named inputs in order) as an ONNX graph at ``path``, replaced atomically."""
    from adavoice.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = extra or {}
    example = torch.randn(1, n_mels, 16) - 5
    with torch.no_grad(), warnings.catch_warnings(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(module.eval(), (example, *extra.values()), str(tmp),
                          input_names=["mel", *extra], output_names=[output],
                          opset_version=opset, dynamo=False,
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


class PostfilterGraph(torch.nn.Module):
    """The post-filter with the voice's own tensors (MelPostfilter.voice_tensors) as inputs
    after the mel, float32 at the edges (float16 inside with ``half``)."""

    def __init__(self, postfilter, half: bool = False):
        super().__init__()
        self.inner = copy.deepcopy(postfilter).eval()
        self.dtype = torch.float16 if half else torch.float32
        self.inner.to(self.dtype)
        self.names = list(postfilter.voice_values())
        self.cfg = postfilter.cfg

    def forward(self, mel, *own):
        values = {name: value.to(self.dtype) for name, value in zip(self.names, own,
                                                                      strict=True)}
        return self.inner(mel.to(self.dtype), values).float()


def export_postfilter(postfilter, path: str | Path, half: bool = False,
                      opset: int = OPSET) -> Path:
    """A learned mel post-filter (adavoice.models.mel_postfilter) as ``mel (B, n_mels, T),
    then each of its voice tensors under ``postfilter.<name>`` (a voice's own values, or the
    base's) -> filtered (B, n_mels, T)``; float16 inside with ``half``."""
    from adavoice.models.mel_postfilter import VOICE_PREFIX

    extra = {VOICE_PREFIX + name: value for name, value in postfilter.voice_values().items()}
    return _export_mel_graph(PostfilterGraph(postfilter, half), postfilter.cfg.n_mels, path,
                             opset, "filtered", {0: "batch", 2: "frames"}, extra)
