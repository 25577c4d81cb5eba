"""A base model as users hold it: the acoustic model with its text front end, the parts
shipped beside it (vocoder, speaker encoder, AdaSpeech 2 speech encoder) and the folder they
live in (``config.json`` + ``model.safetensors``, see ``adavoice.artifacts``).

>>> model = BaseModel.load("demo")
>>> audio = model.synthesize("Hello there.", speaker="flite:rms")
>>> audio.sample_rate, audio.duration_s > 0.3
(22050, True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adavoice.artifacts import damaged, read_artifact, read_json, sha256_file, write_artifact
from adavoice.audio import Audio
from adavoice.config import MAX_ABS_LOG_MEL, SynthesisConfig
from adavoice.errors import (
    AdapterMismatchError,
    MissingFileError,
    ModelFormatError,
    UnknownSpeakerError,
)
from adavoice.models.acoustic import AcousticModel, SpeakerCondition
from adavoice.models.base_config import KIND, BaseModelConfig
from adavoice.postfilter import sharpen_mel
from adavoice.text.chunks import token_pieces

SHIPPED_MODELS = Path(__file__).resolve().parent.parent.parent / "models"
WEIGHTS_NAME = "model.safetensors"
SHARPENED_RENDERERS = ("universal",)  # where mel sharpening was measured
POSTFILTERED_RENDERERS = ("universal",)  # where the learned post-filter was measured


def save_base_model(folder: str | Path, model: AcousticModel, cfg: BaseModelConfig,
                    half: bool = False) -> Path:
    """Write the release folder. ``half`` stores weights as fp16 (shipping); loading upcasts."""
    return write_artifact(folder, KIND, cfg.to_dict(), model.state_dict(), half)


def read_base_config(folder: str | Path) -> BaseModelConfig:
    """The config of a base model folder (or shipped name) without loading its weights."""
    from adavoice.config import read_json

    path = resolve_model_dir(folder) / "config.json"
    return BaseModelConfig.from_dict(read_json(path, what="base model config"))


def load_base_model(folder: str | Path) -> tuple[AcousticModel, BaseModelConfig]:
    """(eval-mode model, config) from a base-model folder; MissingFileError or
    ModelFormatError naming the file for anything missing, damaged or inconsistent."""
    model, cfg, _ = _read_base_model(folder)
    return model, cfg


def _read_base_model(folder: str | Path) -> tuple[AcousticModel, BaseModelConfig, str]:
    """:func:`load_base_model` plus the weights' sha256, checked against the file on read."""
    config, state = read_artifact(folder, KIND, "base model")
    cfg = BaseModelConfig.from_dict(config, Path(folder) / "config.json")
    with damaged(folder, "base model"):
        model = AcousticModel(cfg.acoustic)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFormatError(f"weights do not match config.json "
                               f"({' '.join(str(exc).split())[:300]})",
                               path=Path(folder) / WEIGHTS_NAME) from exc
    return model.eval(), cfg, config["weights_sha256"]


def content_hash(folder: str | Path) -> str:
    """sha256 of the weights file: the identity adapters record for their base."""
    return sha256_file(Path(folder) / WEIGHTS_NAME)


def resolve_model_dir(name_or_path: str | Path) -> Path:
    """A model folder path, or ``"demo"`` (any name under the repo's ``models/``). A folder
    that holds a ``config.json`` wins; an unrelated folder named ``demo`` does not hide the
    shipped model."""
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path):
        raise MissingFileError(f"a model is named by a folder path or 'demo', not "
                               f"{name_or_path!r}", fix="pass 'demo' or a model folder")
    path = Path(name_or_path)
    if (path / "config.json").is_file():
        return path
    shipped = SHIPPED_MODELS / str(name_or_path)
    if shipped.is_dir():  # a shipped name wins over a folder of that name that is no model
        return shipped
    if path.is_dir():  # loading it names what is missing
        return path
    raise MissingFileError("no such model folder", path=name_or_path,
                           fix="pass 'demo' or a folder written by `adavoice train base`")


class BaseModel:
    """A trained multi-speaker acoustic model with its text front end and vocoder."""

    def __init__(self, model: AcousticModel, cfg: BaseModelConfig, folder: Path,
                 weights_sha256: str | None = None):
        from adavoice.text import SymbolTable, TextProcessor

        self.model, self.cfg, self.folder = model.eval(), cfg, folder
        self.name = str(Path(folder).resolve())  # what a voice bundle records as its base
        self.processor = TextProcessor.from_symbols(SymbolTable.from_dict(cfg.symbols))
        # ``load`` passes the hash the read has just checked: the weights are hashed once
        self._hash = weights_sha256 or content_hash(folder)
        self._parts: dict = {}

    @classmethod
    def load(cls, name_or_path: str | Path = "demo", precision: str = "auto") -> "BaseModel":
        """``precision``: the decoder's matrix products at inference, ``"auto"`` (bfloat16
        where the CPU has AMX, else float32), ``"float32"`` or ``"bfloat16"``; durations
        are computed in float32 in every case (see AcousticModel.set_inference_precision)."""
        folder = resolve_model_dir(name_or_path)
        model, cfg, weights_sha256 = _read_base_model(folder)
        model.set_inference_precision(precision)
        base = cls(model, cfg, folder, weights_sha256)
        if folder != Path(name_or_path):
            base.name = str(name_or_path)  # a shipped name stays portable
        return base

    @classmethod
    def shared(cls, name_or_path: str | Path = "demo") -> "BaseModel":
        """One instance per model folder and process: voices loaded together share it."""
        key = str(resolve_model_dir(name_or_path).resolve())
        if key not in _SHARED:
            _SHARED[key] = cls.load(name_or_path)
        return _SHARED[key]

    def set_precision(self, precision: str) -> None:
        """Change the decoder's inference precision (see ``load``)."""
        self.model.set_inference_precision(precision)

    @property
    def precision(self) -> str:
        """The decoder's inference precision now in use: "float32" or "bfloat16"."""
        dtype = self.model.inference_dtype
        return "float32" if dtype is None else str(dtype).removeprefix("torch.")

    @property
    def speakers(self) -> list[str]:
        return list(self.cfg.speakers)

    @property
    def sample_rate(self) -> int:
        return self.cfg.mel.sample_rate_hz

    @property
    def content_hash(self) -> str:
        return self._hash

    # ---- parts shipped beside the acoustic model ------------------------------------------
    def _part(self, name: str, load):
        if name not in self._parts:
            self._parts[name] = load()
        return self._parts[name]

    def speech_encoder(self):
        """The AdaSpeech 2 speech encoder from ``mel_encoder/`` (MissingFileError if none)."""
        return self._part("speech_encoder", self._load_speech_encoder)

    def _load_speech_encoder(self):
        from adavoice.models.speech_encoder import SpeechEncoder

        folder = self.folder / "mel_encoder"
        if not folder.is_dir():
            raise MissingFileError("this base has no mel encoder (untranscribed adaptation "
                                   "needs one)", path=folder,
                                   fix="train one: adavoice train mel-encoder DATA --install")
        encoder = SpeechEncoder.from_dir(folder)
        with damaged(folder, "mel encoder"):
            made_for = encoder.provenance.get("base_weights_sha256")
        if made_for is not None and made_for != self.content_hash:
            raise AdapterMismatchError("the mel encoder was trained on another base",
                                       path=folder,
                                       fix="retrain it: adavoice train mel-encoder --install")
        if (encoder.cfg.hidden, encoder.cfg.n_mels) != (self.cfg.acoustic.hidden,
                                                         self.cfg.acoustic.n_mels):
            raise AdapterMismatchError("the mel encoder's sizes do not fit this base",
                                       path=folder)
        return encoder.requires_grad_(False)

    def speaker_encoder(self):
        """The shipped ECAPA-TDNN speaker encoder (``speaker_encoder/``), or None."""
        return self._part("speaker_encoder", self._load_speaker_encoder)

    def _load_speaker_encoder(self):
        from adavoice.models.speaker import SpeakerEncoder

        folder = self.folder / "speaker_encoder"
        if not folder.is_dir():
            return None
        encoder, mel = SpeakerEncoder.from_dir(folder)
        if mel != self.cfg.mel:
            raise ModelFormatError("the speaker encoder was trained on another mel front end",
                                   path=folder)
        return encoder

    def speaker_centroids(self) -> torch.Tensor | None:
        """(n_speakers, D) unit mean speaker-encoder embeddings of the base speakers, in the
        base's speaker order, or None when the base ships no speaker encoder."""
        return self._part("centroids", self._load_centroids)

    def _load_centroids(self) -> torch.Tensor | None:
        from safetensors.torch import load_file

        path = self.folder / "speaker_encoder" / "centroids.safetensors"
        if not path.is_file() or self.speaker_encoder() is None:
            return None
        with damaged(path.parent, "speaker encoder's centroid table"):
            stored = load_file(str(path))
            names = read_json(path.parent / "config.json").get("training", {}).get("speakers")
            if not isinstance(names, list) or sorted(names) != sorted(self.speakers):
                return None
            table = stored["centroids"].float()[[names.index(s) for s in self.speakers]]
            if table.ndim != 2 or table.shape[0] != len(self.speakers):
                raise ValueError(f"centroids of shape {tuple(table.shape)}")
            return table

    @torch.no_grad()
    def seen_speaker_similarities(self, mels: list[torch.Tensor]) -> torch.Tensor | None:
        """(n_speakers,) cosine between the clips' mean speaker embedding and each seen
        speaker's centroid; None when the base ships no speaker encoder. mels: (n_mels, T)."""
        centroids = self.speaker_centroids()
        if centroids is None:
            return None
        embedding = self.speaker_encoder().embed_many(mels)
        with damaged(self.folder / "speaker_encoder", "speaker encoder's centroid table"):
            return centroids @ embedding

    def vocoder(self, kind: str = "auto"):
        """The waveform renderer: ``universal`` (HiFi-GAN V1, :mod:`adavoice.models.universal`),
        ``fast`` (the base's own ``vocoder/``: an iSTFT vocoder or a shrunk HiFi-GAN),
        ``griffin-lim``, or ``auto``: what the base's config names as its best
        (``auto_vocoder``, chosen by measurement), else universal."""
        kind = self.auto_vocoder if SynthesisConfig(vocoder=kind).vocoder == "auto" else kind
        if kind == "fast" and not (self.folder / "vocoder" / "config.json").is_file():
            raise MissingFileError("this base has no fast vocoder", path=self.folder / "vocoder",
                                   fix="use --vocoder universal or griffin-lim, or train one")
        return self._part(f"vocoder:{kind}", lambda: self._load_vocoder(kind))

    @property
    def auto_vocoder(self) -> str:
        """The renderer ``auto`` means for this base."""
        return self.cfg.auto_vocoder or "universal"

    def mel_sharpening(self, kind: str = "auto") -> float:
        """How much :meth:`stream` sharpens the predicted mels (adavoice.postfilter) before the
        renderer ``kind``: the base's ``mel_sharpening`` for the universal vocoder, where it
        was measured (BENCHMARKS.md "Sharper mels"); 1.0 (none) for every other renderer, and
        where the base's learned post-filter replaces it (:meth:`mel_postfilter`)."""
        kind = self.auto_vocoder if SynthesisConfig(vocoder=kind).vocoder == "auto" else kind
        if self.has_postfilter and kind in POSTFILTERED_RENDERERS:
            return 1.0
        if kind in SHARPENED_RENDERERS and self.cfg.mel_sharpening is not None:
            return float(self.cfg.mel_sharpening)
        return 1.0

    @property
    def has_postfilter(self) -> bool:
        """Whether the base ships a learned mel post-filter (``postfilter/``)."""
        return (self.folder / "postfilter" / "config.json").is_file()

    @property
    def postfilter_id(self) -> str | None:
        """The weights sha256 of the base's post-filter (what a voice's own post-filter values
        and a bundle's post-filter graph are for), or None when it has none."""
        if not self.has_postfilter:
            return None
        return str(read_json(self.folder / "postfilter" / "config.json").get("weights_sha256"))

    def mel_postfilter(self, kind: str = "auto"):
        """The base's learned mel post-filter (:mod:`adavoice.models.mel_postfilter`, from
        ``postfilter/``) when :meth:`stream` applies it before the renderer ``kind`` (the
        universal vocoder, where it was measured), else None. ModelFormatError when the folder
        is damaged; AdapterMismatchError when it was trained on another base."""
        kind = self.auto_vocoder if SynthesisConfig(vocoder=kind).vocoder == "auto" else kind
        if kind not in POSTFILTERED_RENDERERS or not self.has_postfilter:
            return None
        return self._part("postfilter", self._load_postfilter)

    def _load_postfilter(self):
        from adavoice.models.mel_postfilter import MelPostfilter

        folder = self.folder / "postfilter"
        net = MelPostfilter.from_dir(folder)
        made_for = net.provenance.get("base_weights_sha256")
        if made_for is not None and made_for != self.content_hash:
            raise AdapterMismatchError("the mel post-filter was trained on another base",
                                       path=folder,
                                       fix="retrain it: adavoice train postfilter --install")
        if net.cfg.n_mels != self.cfg.acoustic.n_mels:
            raise AdapterMismatchError("the mel post-filter's mel channels do not fit this base",
                                       path=folder)
        return net.requires_grad_(False)

    def mel_filter(self, kind: str = "auto", condition: SpeakerCondition | None = None):
        """What :meth:`stream` does to each predicted mel (n_mels, T) before the renderer
        ``kind``: the learned post-filter (with the voice ``condition``'s own values of its
        tensors, where the voice has them), else the sharpening, else nothing."""
        net = self.mel_postfilter(kind)
        if net is not None:
            own = None if condition is None else condition.postfilter
            if own:
                try:
                    values = net.voice_values(own)
                except ModelFormatError as exc:
                    raise ModelFormatError(exc.message, path=self.folder / "postfilter",
                                           fix=exc.fix) from exc
                return lambda mel: net(mel, values)
            return net
        amount = self.mel_sharpening(kind)
        if amount != 1.0:
            return lambda mel: sharpen_mel(mel, amount)
        return lambda mel: mel

    def _load_vocoder(self, name: str):
        if name == "griffin-lim":
            from adavoice.models.griffin_lim import GriffinLim

            return GriffinLim(self.cfg.mel)
        if name == "universal":
            from adavoice.models.universal import universal_vocoder

            return universal_vocoder(self.cfg.mel)
        from adavoice.models.vocoder import load_renderer

        return load_renderer(self.folder / "vocoder", self.cfg.mel)

    # ---- speaking --------------------------------------------------------------------------
    def speaker_id(self, speaker: str | None) -> int:
        if speaker is None:
            return 0
        if speaker not in self.cfg.speakers:
            raise UnknownSpeakerError(f"unknown speaker {speaker!r}; this model has "
                                      f"{len(self.cfg.speakers)} speakers",
                                      fix="see `adavoice synth --list-speakers`")
        return self.cfg.speakers.index(speaker)

    def token_pieces(self, text: str) -> list[torch.Tensor]:
        """``text`` as (1, N) token tensors, one per pass (see adavoice.text.chunks)."""
        return [torch.tensor([ids], dtype=torch.long)
                for ids in token_pieces(self.processor, text)]

    def mel(self, text: str, condition: SpeakerCondition,
            config: SynthesisConfig | None = None) -> torch.Tensor:
        """(n_mels, T) log-mel for ``text`` in the voice ``condition``; ``config``'s unset
        knobs are the neutral ones. Long text is spoken piece by piece and the mels joined."""
        config = (config or SynthesisConfig()).over(SynthesisConfig.neutral())
        mels = [self.model.infer(tokens, condition, length_scale=config.length_scale,
                                 pitch_shift_semitones=config.pitch_shift,
                                 energy_scale=config.energy_scale).mel[0]
                for tokens in self.token_pieces(text)]
        return mels[0] if len(mels) == 1 else torch.cat(mels, dim=-1)

    @torch.no_grad()
    def stream(self, text: str, condition: SpeakerCondition, config: SynthesisConfig):
        """Speak ``text`` piece by piece (see adavoice.text.chunks), mel and wave: yields one
        float32 wave (T_samples,) a piece, so memory stays flat in the text's length. All
        pieces are tokenised (and bad text refused) before the first is spoken. A non-finite
        sample is a ModelFormatError naming the base."""
        config = config.over(SynthesisConfig.neutral())
        vocoder = self.vocoder(config.vocoder)
        shape = self.mel_filter(config.vocoder, condition)
        for tokens in self.token_pieces(text):
            try:
                mel = self.model.infer(tokens, condition, length_scale=config.length_scale,
                                       pitch_shift_semitones=config.pitch_shift,
                                       energy_scale=config.energy_scale).mel[0]
            except ModelFormatError as exc:  # the model cannot know its folder
                raise ModelFormatError(exc.message, path=self.folder, fix=exc.fix) from exc
            if not (mel.abs() <= MAX_ABS_LOG_MEL).all():  # NaN fails too
                raise ModelFormatError("synthesis gave a non-finite or out-of-range mel: the "
                                       "model's weights or the voice's tensors are damaged",
                                       path=self.folder, fix="copy the model folder again")
            wave = vocoder(shape(mel)).numpy()
            if not np.isfinite(wave).all():
                raise ModelFormatError("synthesis gave non-finite samples: the model's "
                                       "weights or the voice's tensors are damaged",
                                       path=self.folder, fix="copy the model folder again")
            yield wave

    def render(self, text: str, condition: SpeakerCondition, config: SynthesisConfig) -> Audio:
        """Speak ``text`` in ``condition``: :meth:`stream`'s pieces joined."""
        waves = list(self.stream(text, condition, config))
        return Audio(waves[0] if len(waves) == 1 else np.concatenate(waves), self.sample_rate)

    def synthesize(self, text: str, speaker: str | None = None,
                   config: SynthesisConfig | None = None, **knobs) -> Audio:
        """Speak ``text`` as a seen speaker (the first one when None). ``knobs``
        (length_scale, pitch_shift in semitones, energy_scale, vocoder) go over ``config``."""
        condition = self.model.speaker_condition(self.speaker_id(speaker))
        return self.render(text, condition, SynthesisConfig.make(config, **knobs))

    def synthesize_stream(self, text: str, speaker: str | None = None,
                          config: SynthesisConfig | None = None, **knobs):
        """:meth:`synthesize` as an iterator of float32 waves, one per piece of the text (see
        :meth:`stream`): for long text, e.g. ``save_audio_pieces(path, stream, rate)``."""
        condition = self.model.speaker_condition(self.speaker_id(speaker))
        return self.stream(text, condition, SynthesisConfig.make(config, **knobs))


_SHARED: dict[str, BaseModel] = {}
