"""ONNX export of the acoustic model with the voice as graph inputs (DESIGN §8).

One graph serves every voice whose kind leaves the weights alone (``embedding``, ``cln``, the
base's seen speakers): the speaker vector, the utterance vector and every conditional layer
norm's (scale, bias) are inputs, and so are the three knobs. Inputs and outputs:

====================  =============================  ============================================
name                  shape, dtype                   meaning
====================  =============================  ============================================
``tokens``            (B, N) int64                   token ids, 0 = padding
``speaker_vector``    (speaker_dim,) float32         the voice's speaker vector
``utterance_vector``  (hidden,) float32              the voice's mean utterance vector
``norm_scale``        (2 * decoder_layers, hidden)   every decoder CLN's scale, in block order
``norm_bias``         (2 * decoder_layers, hidden)   every decoder CLN's bias
``length_scale``      () float32                     > 1 speaks slower
``pitch_shift``       () float32                     semitones
``energy_scale``      () float32                     > 1 louder
``mel``               (B, n_mels, T) float32         natural-log mel, padding at the log floor
``durations``         (B, N) int64                   frames per token
``log_duration``      (B, N) float32                 |x| > 20 only from damaged weights
====================  =============================  ============================================

The graph is :meth:`AcousticModel.synthesis_pass` traced: the length regulator is a cumsum,
a mask and a matmul, so nothing in it loops over data. The TorchScript exporter
(``dynamo=False``) is used: it needs nothing besides torch and onnx, exports every op here,
and its graphs are what onnxruntime's CPU and CUDA providers have run for years; the dynamo
exporter needs ``onnxscript`` as well and refuses some of the model's asserts.

>>> from adavoice.models.acoustic import AcousticModel
>>> from adavoice.models.acoustic_config import AcousticConfig
>>> import tempfile
>>> model = AcousticModel(AcousticConfig.tiny(n_symbols=12, n_speakers=2)).eval()
>>> path = export_acoustic(model, Path(tempfile.mkdtemp()) / "acoustic.onnx")
>>> report = parity(model, path, model.speaker_condition(1), [[3, 4, 5, 6, 7, 2]])
>>> report["durations_equal"], report["mel_max_abs"] < 1e-3
(True, True)
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adavoice.models.acoustic import AcousticModel, SpeakerCondition

OPSET = 17
INPUTS = ("tokens", "speaker_vector", "utterance_vector", "norm_scale", "norm_bias",
          "length_scale", "pitch_shift", "energy_scale")
OUTPUTS = ("mel", "durations", "log_duration")


class AcousticGraph(nn.Module):
    """The exported function: :meth:`AcousticModel.synthesis_pass` over the inputs above.
    ``decoder``: a voice's own decoder (``lora``/``decoder`` kinds), else the base's."""

    def __init__(self, model: AcousticModel, decoder: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.voice_decoder = decoder

    def forward(self, tokens, speaker_vector, utterance_vector, norm_scale, norm_bias,
                length_scale, pitch_shift, energy_scale):
        batch = tokens.shape[0]
        text_mask = tokens != 0
        pairs = [(norm_scale[i: i + 1], norm_bias[i: i + 1])
                 for i in range(len(self.model.conditional_norms()))]
        out = self.model.synthesis_pass(
            tokens, text_mask, speaker_vector.view(1, -1).expand(batch, -1),
            utterance_vector.view(1, -1).expand(batch, -1), pairs, self.voice_decoder,
            length_scale, pitch_shift, energy_scale)
        return out.mel, out.durations, out.log_duration


def voice_inputs(model: AcousticModel, voice: SpeakerCondition) -> dict[str, np.ndarray]:
    """The voice's graph inputs (float32 arrays): what a bundle's voice file stores."""
    with torch.no_grad():
        pairs = model.condition_norm_params(voice)
        return {
            "speaker_vector": voice.speaker_vector.detach().float().reshape(-1).numpy().copy(),
            "utterance_vector": voice.utterance_vector.detach().float().reshape(-1).numpy().copy(),
            "norm_scale": torch.cat([s.reshape(1, -1) for s, _ in pairs]).float().numpy(),
            "norm_bias": torch.cat([b.reshape(1, -1) for _, b in pairs]).float().numpy(),
        }


def knob_inputs(length_scale: float = 1.0, pitch_shift: float = 0.0,
                energy_scale: float = 1.0) -> dict[str, np.ndarray]:
    return {"length_scale": np.array(length_scale, dtype=np.float32),
            "pitch_shift": np.array(pitch_shift, dtype=np.float32),
            "energy_scale": np.array(energy_scale, dtype=np.float32)}


class HalfDecoder(nn.Module):
    """A decoder copy in float16 behind float32 edges (the GPU graph): the text encoder and
    the variance adaptor stay float32, so durations do not move with precision."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(decoder).half()

    def set_inference_dtype(self, dtype) -> None:  # the copy is float16 already
        pass

    def forward(self, frames, frame_mask, condition=None, norm_params=None):
        params = None if norm_params is None else [(s.half(), b.half()) for s, b in norm_params]
        return self.inner(frames.half(), frame_mask, None, params).float()


def export_acoustic(model: AcousticModel, path: str | Path, decoder: nn.Module | None = None,
                    half: bool = False, opset: int = OPSET) -> Path:
    """Write ``path`` (an ``.onnx`` file, replaced atomically) for ``model``: float32, or with
    ``half`` a float16 decoder (inputs and outputs float32 either way)."""
    from adavoice.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = model.inference_dtype
    model.set_inference_precision("float32")  # the graph is float32; fp16 is a later pass
    if half:
        decoder = HalfDecoder(decoder if decoder is not None else model.decoder)
    graph = AcousticGraph(model.eval(), decoder).eval()
    voice = voice_inputs(model, model.speaker_condition(0))
    example = (torch.tensor([[1, 2, 3, 4, 5]], dtype=torch.long),
               *(torch.from_numpy(voice[k]) for k in INPUTS[1:5]),
               *(torch.from_numpy(v) for v in knob_inputs().values()))
    try:
        with torch.no_grad(), warnings.catch_warnings(), atomic_path(path) as tmp:
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
            torch.onnx.export(graph, example, str(tmp), input_names=list(INPUTS),
                              output_names=list(OUTPUTS), opset_version=opset, dynamo=False,
                              dynamic_axes={"tokens": {0: "batch", 1: "tokens"},
                                            "mel": {0: "batch", 2: "frames"},
                                            "durations": {0: "batch", 1: "tokens"},
                                            "log_duration": {0: "batch", 1: "tokens"}})
    finally:
        model.inference_dtype = previous
        model.decoder.set_inference_dtype(previous)
    return path


def parity(model: AcousticModel, path: str | Path, voice: SpeakerCondition,
           token_lists: list[list[int]], **knobs) -> dict:
    """Eager torch against onnxruntime on each token list: whether every duration is equal
    and the largest |mel difference| (over frames both have)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {**voice_inputs(model, voice), **knob_inputs(**knobs)}
    equal, worst = True, 0.0
    for ids in token_lists:
        tokens = torch.tensor([ids], dtype=torch.long)
        mel, durations, _ = session.run(None, {"tokens": tokens.numpy(), **feeds})
        expected = model.infer(tokens, voice, **{_EAGER_KNOBS[k]: v for k, v in knobs.items()})
        equal = equal and np.array_equal(durations, expected.durations.numpy())
        frames = min(mel.shape[-1], expected.mel.shape[-1])
        worst = max(worst, float(np.abs(mel[..., :frames]
                                        - expected.mel[..., :frames].numpy()).max()))
    return {"durations_equal": bool(equal), "mel_max_abs": worst}


_EAGER_KNOBS = {"length_scale": "length_scale", "pitch_shift": "pitch_shift_semitones",
                "energy_scale": "energy_scale"}
