"""Adapter kinds: one class each, beside a frozen base (peft's habit: the base is never
modified; an adapter holds its own trainable tensors and hands them to the base at run time).
Each kind says what it trains, what a bundle stores and how stored tensors become a voice;
a new kind is one new class in ``ADAPTER_KINDS``.

- ``embedding`` (:class:`EmbeddingAdapter`): the speaker vector only (the floor).
- ``cln`` (:class:`ClnAdapter`): speaker vector + trainable copies of the decoder's CLN
  projections (AdaSpeech); stores each CLN's final (scale, bias): ~2K numbers. With
  ``cln_parameters="direct"`` the stored vectors are trained themselves.
- ``lora`` (:class:`LoraAdapter`): peft LoRA on the FFN convolutions of a private decoder
  copy, plus CLN; stores LoRA matrices + CLN vectors.
- ``decoder`` (:class:`DecoderAdapter`): full fine-tuning of a private decoder copy (the
  baseline); stores that decoder (keys ``voice_decoder.*``) with its CLN vectors.

Every kind stores ``speaker_vector`` and ``utterance_vector``.

>>> from adavoice.models.acoustic import AcousticModel
>>> from adavoice.models.acoustic_config import AcousticConfig
>>> base = AcousticModel(AcousticConfig.tiny(n_symbols=10, n_speakers=2)).eval()
>>> cfg = AdapterConfig.for_kind("cln")
>>> adapter = adapter_for(base, cfg, base.speaker_embedding.weight[0],
...                       base.speaker_utterance_vectors[0])
>>> tensors = adapter.export()
>>> sorted(tensors)[:3]
['norms.0.bias', 'norms.0.scale', 'norms.1.bias']
>>> condition = condition_from_tensors(base, cfg, tensors)
>>> base.infer(torch.tensor([[1, 2, 3]]), condition).mel.shape[1]
80
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from adavoice.adaptation.config import AdapterConfig
from adavoice.errors import ModelFormatError
from adavoice.models.acoustic import AcousticModel, SpeakerCondition
from adavoice.models.mel_postfilter import VOICE_PREFIX as POSTFILTER_PREFIX

CLN_PROJECTION_KEYS = ("to_scale", "to_bias")
VECTOR_NAMES = ("speaker_vector", "norm_vector", "utterance_vector")


def _is_cln_projection(name: str) -> bool:
    return any(f".{key}." in name for key in CLN_PROJECTION_KEYS)


class Adapter(nn.Module):
    """Trainable voice tensors for ``base`` (which it never modifies).

    ``condition()`` gives a differentiable SpeakerCondition for ``AcousticModel.forward`` /
    ``decode``; ``export()`` gives the tensors a bundle stores. Subclasses set ``kind`` and
    override the hooks below."""

    kind = ""
    own_prefix: str | None = None  # key prefix of the kind's own stored tensors
    stores_norms = True  # whether a bundle of this kind always holds the CLN vectors
    trains_norm_vector = True  # untranscribed: a CLN-only copy of the speaker vector

    def __init__(self, base: AcousticModel, cfg: AdapterConfig, speaker_vector: torch.Tensor,
                 utterance_vector: torch.Tensor, tie_text_vector: bool = True):
        super().__init__()
        self.cfg = cfg
        start = speaker_vector.detach().clone().float()
        # The speaker vector reaches the decoder's CLN and, through the text side, the
        # duration/pitch/energy predictors. Untranscribed adaptation (tie_text_vector=False)
        # only sees the CLN path, so there the text side keeps the starting vector and a
        # separate ``norm_vector`` is trained for the CLN alone.
        if tie_text_vector:
            self.speaker_vector = nn.Parameter(start)
            self.norm_vector = None
        else:
            self.register_buffer("speaker_vector", start)
            self.norm_vector = nn.Parameter(start.clone()) if self.trains_norm_vector else None
        utterance = utterance_vector.detach().clone().float()
        if cfg.train_utterance_vector:  # AdapterConfig refuses it for ``embedding``
            self.utterance_vector = nn.Parameter(utterance)
        else:
            self.register_buffer("utterance_vector", utterance)
        self.decoder: nn.Module | None = None
        self.build(base, start)
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(self.trains(name))
        self._base_norms = base.conditional_norms()  # not registered: never trained or stored

    # ---- hooks of the kinds ---------------------------------------------------------------
    def build(self, base: AcousticModel, start: torch.Tensor) -> None:
        """Make the kind's own modules (``start``: the initial speaker vector)."""

    def trains(self, name: str) -> bool:
        """Whether the parameter ``name`` is trained."""
        return True

    def norms(self) -> list[nn.Module]:
        """The CLN modules whose projections give this voice's (scale, bias)."""
        return self._base_norms

    def own_tensors(self) -> dict[str, torch.Tensor]:
        """The kind's stored tensors besides the vectors and CLN pairs."""
        return {}

    @classmethod
    def load_decoder(cls, base: AcousticModel, cfg: AdapterConfig,
                     own: dict[str, torch.Tensor]) -> nn.Module | None:
        """The voice's own decoder from its stored tensors (None: the base's)."""
        return None

    # ---- shared ----------------------------------------------------------------------------
    def norm_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        vector = self.norm_vector if self.norm_vector is not None else self.speaker_vector
        condition = vector.view(1, -1)
        return [tuple(t.view(-1) for t in n.scale_bias(condition)) for n in self.norms()]

    def condition(self) -> SpeakerCondition:
        return SpeakerCondition(self.speaker_vector, self.utterance_vector, self.norm_params(),
                                self.decoder)

    @torch.no_grad()
    def export(self) -> dict[str, torch.Tensor]:
        """The stored tensors (float32, contiguous). Only this voice's own numbers."""
        tensors = {"speaker_vector": self.speaker_vector.detach().clone(),
                   "utterance_vector": self.utterance_vector.detach().clone()}
        if self.stores_norms or self.norm_vector is not None:
            for index, (scale, bias) in enumerate(self.norm_params()):
                tensors[f"norms.{index}.scale"] = scale.detach().clone()
                tensors[f"norms.{index}.bias"] = bias.detach().clone()
        tensors.update(self.own_tensors())
        return {k: v.float().contiguous() for k, v in tensors.items()}


class EmbeddingAdapter(Adapter):
    """The speaker vector alone (the floor). Without transcripts it also trains a CLN-only
    copy of the vector, and then stores the CLN vectors that copy gives."""

    kind = "embedding"
    stores_norms = False


class ClnAdapter(Adapter):
    """Speaker vector + the decoder's conditional layer norms (AdaSpeech)."""

    kind = "cln"

    @property
    def direct(self) -> bool:
        return self.cfg.cln_parameters == "direct"

    @property
    def trains_norm_vector(self) -> bool:  # direct: the stored vectors are trained instead
        return self.cfg.cln_parameters != "direct"

    def build(self, base: AcousticModel, start: torch.Tensor) -> None:
        self.cln = None
        self.scales = self.biases = None
        if self.direct:  # the stored (scale, bias) vectors themselves, from the start vector's
            with torch.no_grad():
                pairs = [n.scale_bias(start.view(1, -1)) for n in base.conditional_norms()]
            self.scales = nn.ParameterList(nn.Parameter(s.view(-1).clone()) for s, _ in pairs)
            self.biases = nn.ParameterList(nn.Parameter(b.view(-1).clone()) for _, b in pairs)
        else:
            self.cln = nn.ModuleList(copy.deepcopy(n) for n in base.conditional_norms())

    def norms(self) -> list[nn.Module]:
        return list(self.cln)

    def norm_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.direct:
            return list(zip(self.scales, self.biases, strict=True))
        return super().norm_params()


class _DecoderCopyAdapter(Adapter):
    """Kinds that run a private copy of the base decoder."""

    def build(self, base: AcousticModel, start: torch.Tensor) -> None:
        self.decoder = self.wrap(copy.deepcopy(base.decoder), self.cfg)

    @staticmethod
    def wrap(decoder: nn.Module, cfg: AdapterConfig) -> nn.Module:
        return decoder

    def norms(self) -> list[nn.Module]:
        return [m for m in self.decoder.modules() if hasattr(m, "scale_bias")]


class LoraAdapter(_DecoderCopyAdapter):
    """peft LoRA on the decoder's FFN convolutions, plus CLN."""

    kind = "lora"
    own_prefix = "lora."

    @staticmethod
    def wrap(decoder: nn.Module, cfg: AdapterConfig) -> nn.Module:
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                          target_modules=list(cfg.lora_targets), lora_dropout=0.0)
        return inject_adapter_in_model(lora, decoder)

    def trains(self, name: str) -> bool:
        return name in VECTOR_NAMES or "lora_" in name or _is_cln_projection(name)

    def own_tensors(self) -> dict[str, torch.Tensor]:
        from peft import get_peft_model_state_dict

        return {f"lora.{k}": v.detach().clone()
                for k, v in get_peft_model_state_dict(self.decoder).items()}

    @classmethod
    def load_decoder(cls, base, cfg, own):
        from peft import set_peft_model_state_dict

        decoder = cls.wrap(copy.deepcopy(base.decoder), cfg)  # targets: checked by cfg
        try:
            result = set_peft_model_state_dict(decoder, own)
        except RuntimeError as exc:  # shapes that do not fit (another rank or base)
            raise ModelFormatError(f"LoRA tensors do not fit this base ({exc})") from exc
        missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
        if getattr(result, "unexpected_keys", None) or missing:
            raise ModelFormatError(f"LoRA tensors do not match the config: missing "
                                   f"{missing[:3]}, unexpected {result.unexpected_keys[:3]}")
        return decoder


class DecoderAdapter(_DecoderCopyAdapter):
    """Full fine-tuning of a private decoder copy (the baseline)."""

    kind = "decoder"
    own_prefix = "voice_decoder."

    def own_tensors(self) -> dict[str, torch.Tensor]:
        return {f"voice_decoder.{k}": v.detach().clone()
                for k, v in self.decoder.state_dict().items() if not _is_cln_projection("." + k)}

    @classmethod
    def load_decoder(cls, base, cfg, own):
        decoder = copy.deepcopy(base.decoder)
        try:
            missing, unexpected = decoder.load_state_dict(own, strict=False)
        except RuntimeError as exc:
            raise ModelFormatError(f"decoder tensors do not fit this base ({exc})") from exc
        missing = [k for k in missing if not _is_cln_projection("." + k)]
        if missing or unexpected:
            raise ModelFormatError(f"decoder tensors do not fit: missing {missing[:3]}, "
                                   f"unexpected {unexpected[:3]}")
        return decoder


ADAPTER_KINDS: dict[str, type[Adapter]] = {
    cls.kind: cls for cls in (ClnAdapter, LoraAdapter, DecoderAdapter, EmbeddingAdapter)}


def adapter_for(base: AcousticModel, cfg: AdapterConfig, speaker_vector: torch.Tensor,
                utterance_vector: torch.Tensor, tie_text_vector: bool = True) -> Adapter:
    """A new adapter of ``cfg.kind`` (AdapterConfig has checked the kind)."""
    return ADAPTER_KINDS[cfg.kind](base, cfg, speaker_vector, utterance_vector, tie_text_vector)


def condition_from_tensors(base: AcousticModel, cfg: AdapterConfig,
                           tensors: dict[str, torch.Tensor]) -> SpeakerCondition:
    """Rebuild a SpeakerCondition from stored tensors; ModelFormatError if they do not fit or
    hold NaN / infinite values."""
    kind = ADAPTER_KINDS[cfg.kind]
    hidden, n_norms = base.cfg.hidden, len(base.conditional_norms())
    try:
        speaker_vector = tensors["speaker_vector"].float()
        utterance_vector = tensors["utterance_vector"].float()
        norm_params = None
        if kind.stores_norms or "norms.0.scale" in tensors:
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
    prefix = kind.own_prefix
    foreign = sorted(k for k in tensors if k not in ("speaker_vector", "utterance_vector")
                     and not k.startswith(("norms.", POSTFILTER_PREFIX))
                     and not (prefix and k.startswith(prefix)))
    if foreign:
        raise ModelFormatError(f"tensors that a {cfg.kind!r} adapter does not have "
                               f"({', '.join(foreign[:3])}): the config names another kind")
    damaged = sorted(k for k, v in tensors.items()
                     if v.is_floating_point() and not torch.isfinite(v).all())
    if damaged:
        raise ModelFormatError("adapter tensors hold NaN or infinite values "
                               f"({', '.join(damaged[:3])})")
    own = {k[len(prefix):]: v.float() for k, v in tensors.items()
           if prefix and k.startswith(prefix)}
    decoder = kind.load_decoder(base, cfg, own)
    if decoder is not None:
        decoder.eval().requires_grad_(False)
    postfilter = {k[len(POSTFILTER_PREFIX):]: v.float() for k, v in tensors.items()
                  if k.startswith(POSTFILTER_PREFIX)}
    return SpeakerCondition(speaker_vector, utterance_vector, norm_params, decoder,
                            postfilter or None)
