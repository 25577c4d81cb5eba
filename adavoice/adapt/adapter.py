"""Adapter kinds as one module that sits beside a frozen base (peft's habit: the base is never
modified; the adapter holds its own trainable tensors and injects them at run time).

- ``embedding``: the speaker vector only (the floor). Stores speaker + utterance vectors (and,
  when adapted without transcripts, the CLN vectors its separately trained CLN vector gives).
- ``cln``: speaker vector + trainable copies of the decoder's CLN projections (AdaSpeech).
  Stores each CLN's final (scale, bias) and the speaker/utterance vectors: ~2K numbers.
  With ``cln_parameters="direct"`` the stored (scale, bias) vectors are trained themselves,
  starting from what the projections give the start vector.
- ``lora``: peft LoRA on the FFN convolutions (conv1, conv2) of a private copy of the
  decoder, plus CLN as above. Stores LoRA matrices + CLN vectors.
- ``decoder``: full fine-tuning of a private decoder copy (the baseline). Stores that decoder
  (keys ``voice_decoder.*``) with its CLN vectors.

>>> from adavoice.models.acoustic import AcousticModel
>>> from adavoice.models.acoustic_config import AcousticConfig
>>> base = AcousticModel(AcousticConfig.tiny(n_symbols=10, n_speakers=2)).eval()
>>> adapter = VoiceAdapter(base, AdapterConfig.for_kind("cln"),
...                        base.speaker_embedding.weight[0], base.speaker_utterance_vectors[0])
>>> tensors = adapter.export()
>>> sorted(tensors)[:3]
['norms.0.bias', 'norms.0.scale', 'norms.1.bias']
>>> voice = voice_from_tensors(base, AdapterConfig.for_kind("cln"), tensors)
>>> base.infer(torch.tensor([[1, 2, 3]]), voice).mel.shape[1]
80
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from adavoice.adapt.config import AdapterConfig
from adavoice.errors import ModelFormatError
from adavoice.models.acoustic import AcousticModel, VoiceCondition

CLN_PROJECTION_KEYS = ("to_scale", "to_bias")


def _inject_lora(decoder: nn.Module, cfg: AdapterConfig) -> nn.Module:
    from peft import LoraConfig, inject_adapter_in_model

    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                      target_modules=list(cfg.lora_targets), lora_dropout=0.0)
    return inject_adapter_in_model(lora, decoder)


def _is_cln_projection(name: str) -> bool:
    return any(f".{key}." in name for key in CLN_PROJECTION_KEYS)


class VoiceAdapter(nn.Module):
    """Trainable voice tensors for ``base`` (which it never modifies).

    ``condition()`` gives a differentiable VoiceCondition for ``AcousticModel.forward`` /
    ``decode``; ``export()`` gives the tensors a bundle stores."""

    def __init__(self, base: AcousticModel, cfg: AdapterConfig, speaker_vector: torch.Tensor,
                 utterance_vector: torch.Tensor, tie_text_vector: bool = True):
        super().__init__()
        self.cfg = cfg
        start = speaker_vector.detach().clone().float()
        # The speaker vector reaches the decoder's CLN and, through the text side, the
        # duration/pitch/energy predictors. Untranscribed adaptation (tie_text_vector=False)
        # only sees the CLN path, so there the text side keeps the starting vector and a
        # separate ``norm_vector`` is trained for the CLN alone.
        direct = cfg.kind == "cln" and cfg.cln_parameters == "direct"
        if tie_text_vector:
            self.speaker_vector = nn.Parameter(start)
            self.norm_vector = None
        else:
            self.register_buffer("speaker_vector", start)
            self.norm_vector = None if direct else nn.Parameter(start.clone())
        utterance = utterance_vector.detach().clone().float()
        if cfg.train_utterance_vector:  # AdapterConfig refuses it for ``embedding``
            self.utterance_vector = nn.Parameter(utterance)
        else:
            self.register_buffer("utterance_vector", utterance)
        self.norms: nn.ModuleList | None = None
        self.scales: nn.ParameterList | None = None
        self.biases: nn.ParameterList | None = None
        self.decoder: nn.Module | None = None
        if direct:  # the stored (scale, bias) vectors themselves, from the start vector's
            with torch.no_grad():
                pairs = [n.scale_bias(start.view(1, -1)) for n in base.conditional_norms()]
            self.scales = nn.ParameterList(nn.Parameter(s.view(-1).clone()) for s, _ in pairs)
            self.biases = nn.ParameterList(nn.Parameter(b.view(-1).clone()) for _, b in pairs)
        elif cfg.kind == "cln":
            self.norms = nn.ModuleList(copy.deepcopy(n) for n in base.conditional_norms())
        elif cfg.kind in ("lora", "decoder"):
            self.decoder = copy.deepcopy(base.decoder)
            if cfg.kind == "lora":
                self.decoder = _inject_lora(self.decoder, cfg)
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(cfg.kind != "lora"
                                     or name in ("speaker_vector", "norm_vector",
                                                 "utterance_vector")
                                     or "lora_" in name or _is_cln_projection(name))
        self._base_norms = base.conditional_norms()  # used by ``embedding``; not registered

    def norm_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.scales is not None:
            return list(zip(self.scales, self.biases, strict=True))
        vector = self.norm_vector if self.norm_vector is not None else self.speaker_vector
        condition = vector.view(1, -1)
        if self.norms is not None:
            norms = list(self.norms)
        elif self.decoder is not None:
            norms = [m for m in self.decoder.modules() if hasattr(m, "scale_bias")]
        else:
            norms = self._base_norms
        return [tuple(t.view(-1) for t in n.scale_bias(condition)) for n in norms]

    def condition(self) -> VoiceCondition:
        return VoiceCondition(self.speaker_vector, self.utterance_vector, self.norm_params(),
                              self.decoder)

    @torch.no_grad()
    def export(self) -> dict[str, torch.Tensor]:
        """The stored tensors (float32, contiguous). Only this voice's own numbers."""
        tensors = {"speaker_vector": self.speaker_vector.detach().clone(),
                   "utterance_vector": self.utterance_vector.detach().clone()}
        if self.cfg.kind != "embedding" or self.norm_vector is not None:
            for index, (scale, bias) in enumerate(self.norm_params()):
                tensors[f"norms.{index}.scale"] = scale.detach().clone()
                tensors[f"norms.{index}.bias"] = bias.detach().clone()
        if self.cfg.kind == "lora":
            from peft import get_peft_model_state_dict

            for key, value in get_peft_model_state_dict(self.decoder).items():
                tensors[f"lora.{key}"] = value.detach().clone()
        if self.cfg.kind == "decoder":
            for key, value in self.decoder.state_dict().items():
                if not _is_cln_projection("." + key):
                    tensors[f"voice_decoder.{key}"] = value.detach().clone()
        return {k: v.float().contiguous() for k, v in tensors.items()}


def voice_from_tensors(base: AcousticModel, cfg: AdapterConfig,
                       tensors: dict[str, torch.Tensor]) -> VoiceCondition:
    """Rebuild a VoiceCondition from stored tensors; ModelFormatError if they do not fit or
    hold NaN / infinite values."""
    hidden, n_norms = base.cfg.hidden, len(base.conditional_norms())
    try:
        speaker_vector = tensors["speaker_vector"].float()
        utterance_vector = tensors["utterance_vector"].float()
        norm_params = None
        if cfg.kind != "embedding" or "norms.0.scale" in tensors:
            norm_params = [(tensors[f"norms.{i}.scale"].float(), tensors[f"norms.{i}.bias"].float())
                           for i in range(n_norms)]
    except KeyError as exc:
        raise ModelFormatError(f"adapter lacks tensor {exc}") from exc
    shapes_ok = (speaker_vector.shape == (base.cfg.speaker_dim,)
                 and utterance_vector.shape == (hidden,)
                 and all(s.shape == (hidden,) and b.shape == (hidden,)
                         for s, b in (norm_params or [])))
    if not shapes_ok:
        raise ModelFormatError("adapter tensor shapes do not fit this base model")
    own_prefix = {"lora": "lora.", "decoder": "voice_decoder."}.get(cfg.kind)
    foreign = sorted(k for k in tensors if k not in ("speaker_vector", "utterance_vector")
                     and not k.startswith("norms.")
                     and not (own_prefix and k.startswith(own_prefix)))
    if foreign:
        raise ModelFormatError(f"tensors that a {cfg.kind!r} adapter does not have "
                               f"({', '.join(foreign[:3])}): the config names another kind")
    damaged = sorted(k for k, v in tensors.items()
                     if v.is_floating_point() and not torch.isfinite(v).all())
    if damaged:
        raise ModelFormatError("adapter tensors hold NaN or infinite values "
                               f"({', '.join(damaged[:3])})")
    decoder = None
    if cfg.kind == "lora":
        from peft import set_peft_model_state_dict

        decoder = _inject_lora(copy.deepcopy(base.decoder), cfg)  # targets: checked by cfg
        lora = {k[len("lora."):]: v.float() for k, v in tensors.items() if k.startswith("lora.")}
        try:
            result = set_peft_model_state_dict(decoder, lora)
        except RuntimeError as exc:  # shapes that do not fit (another rank or base)
            raise ModelFormatError(f"LoRA tensors do not fit this base ({exc})") from exc
        missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
        if getattr(result, "unexpected_keys", None) or missing:
            raise ModelFormatError(f"LoRA tensors do not match the config: missing "
                                   f"{missing[:3]}, unexpected {result.unexpected_keys[:3]}")
    elif cfg.kind == "decoder":
        decoder = copy.deepcopy(base.decoder)
        state = {k[len("voice_decoder."):]: v.float() for k, v in tensors.items()
                 if k.startswith("voice_decoder.")}
        try:
            missing, unexpected = decoder.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise ModelFormatError(f"decoder tensors do not fit this base ({exc})") from exc
        missing = [k for k in missing if not _is_cln_projection("." + k)]
        if missing or unexpected:
            raise ModelFormatError(f"decoder tensors do not fit: missing {missing[:3]}, "
                                   f"unexpected {unexpected[:3]}")
    if decoder is not None:
        decoder.eval().requires_grad_(False)
    return VoiceCondition(speaker_vector, utterance_vector, norm_params, decoder)
