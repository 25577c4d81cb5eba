"""The public surface: BaseModel (load, speakers, synthesize), Voice (an adapted voice:
load, save, synthesize) and adapt().

>>> import adavoice
>>> callable(adavoice.BaseModel.load) and callable(adavoice.adapt)
True
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from adavoice.adapt.run import adapt  # noqa: F401  (also reachable as adavoice.adapt)
from adavoice.audio import Audio
from adavoice.errors import ConfigError, EmptyTextError, MissingFileError, UnknownSpeakerError
from adavoice.models.base_model import content_hash, load_base_model

SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "models"
MAX_LENGTH_SCALE = 10.0
MAX_PITCH_SHIFT = 24.0  # semitones: two octaves either way


def check_knobs(length_scale: float = 1.0, pitch_shift: float = 0.0,
                energy_scale: float = 1.0) -> None:
    """ConfigError unless the knobs are finite, 0 < length_scale <= 10, |pitch_shift| <= 24
    semitones and energy_scale > 0; outside that the model speaks garbage or silence.

    >>> try:
    ...     check_knobs(energy_scale=-5)
    ... except ConfigError as err:
    ...     print(err.message)
    energy_scale is -5, must be above 0
    """
    values = {"length_scale": length_scale, "pitch_shift": pitch_shift,
              "energy_scale": energy_scale}
    for name, value in values.items():
        if not math.isfinite(float(value)):
            raise ConfigError(f"{name} is {value}, must be a finite number",
                              fix=f"pass a number for {name}")
    if not 0 < length_scale <= MAX_LENGTH_SCALE:
        raise ConfigError(f"length_scale is {length_scale:g}, must be above 0 and at most "
                          f"{MAX_LENGTH_SCALE:g}", fix="use 1 for normal speed, 1.2 for slower")
    if abs(pitch_shift) > MAX_PITCH_SHIFT:
        raise ConfigError(f"pitch_shift is {pitch_shift:g} semitones, must be between "
                          f"-{MAX_PITCH_SHIFT:g} and {MAX_PITCH_SHIFT:g}",
                          fix="shift by a few semitones, e.g. -3 or 2")
    if not energy_scale > 0:
        raise ConfigError(f"energy_scale is {energy_scale:g}, must be above 0",
                          fix="use 1 for normal loudness")


def resolve_model_dir(name_or_path: str | Path) -> Path:
    """``"demo"`` (or any name under the repo's ``models/``) or a folder path."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    shipped = SHIPPED_MODELS / str(name_or_path)
    if shipped.is_dir():
        return shipped
    raise MissingFileError("no such model folder", path=name_or_path,
                           fix="pass 'demo' or a folder written by `adavoice train base`")


class BaseModel:
    """A trained multi-speaker acoustic model with its text front end and vocoder.

    >>> model = BaseModel.load("demo")
    >>> audio = model.synthesize("Hello there.", speaker="flite:rms")
    >>> audio.sample_rate, audio.duration_s > 0.3
    (22050, True)
    """

    def __init__(self, model, cfg, folder: Path):
        from adavoice.text import SymbolTable, TextProcessor

        self.model, self.cfg, self.folder = model.eval(), cfg, folder
        self.name = str(Path(folder).resolve())  # what a voice bundle records as its base
        self.processor = TextProcessor.from_symbols(SymbolTable.from_dict(cfg.symbols))
        self._vocoders: dict = {}
        self._hash: str | None = None
        self._parts: dict = {}

    @classmethod
    def load(cls, name_or_path: str | Path = "demo", precision: str = "auto") -> "BaseModel":
        """``precision``: the decoder's matrix products at inference, ``"auto"`` (bfloat16
        where the CPU has AMX, else float32), ``"float32"`` or ``"bfloat16"``; durations
        are computed in float32 in every case (see AcousticModel.set_inference_precision)."""
        folder = resolve_model_dir(name_or_path)
        model, cfg = load_base_model(folder)
        model.set_inference_precision(precision)
        base = cls(model, cfg, folder)
        if not Path(name_or_path).is_dir():
            base.name = str(name_or_path)  # a shipped name stays portable
        return base

    def set_precision(self, precision: str) -> None:
        """Change the decoder's inference precision (see ``load``)."""
        self.model.set_inference_precision(precision)

    @property
    def precision(self) -> str:
        """The decoder's inference precision now in use: "float32" or "bfloat16"."""
        dtype = self.model.inference_dtype
        return "float32" if dtype is None else str(dtype).removeprefix("torch.")

    @classmethod
    def shared(cls, name_or_path: str | Path = "demo") -> "BaseModel":
        """One instance per model folder and process: voices loaded together share it."""
        key = str(resolve_model_dir(name_or_path).resolve())
        if key not in _SHARED:
            _SHARED[key] = cls.load(name_or_path)
        return _SHARED[key]

    # ---- parts shipped beside the acoustic model ------------------------------------------
    def mel_encoder(self):
        """AdaSpeech 2 mel encoder from ``mel_encoder/`` (MissingFileError if none)."""
        if "mel_encoder" not in self._parts:
            from adavoice.models.mel_encoder import MelEncoder

            folder = self.folder / "mel_encoder"
            if not folder.is_dir():
                raise MissingFileError("this base has no mel encoder (untranscribed adaptation "
                                       "needs one)", path=folder,
                                       fix="train one: adavoice train mel-encoder DATA --install")
            from adavoice.config import read_json
            from adavoice.errors import AdapterMismatchError

            made_for = read_json(folder / "config.json").get("training", {}).get(
                "base_weights_sha256")
            if made_for is not None and made_for != self.content_hash:
                raise AdapterMismatchError("the mel encoder was trained on another base",
                                           path=folder,
                                           fix="retrain it: adavoice train mel-encoder --install")
            encoder = MelEncoder.from_dir(folder).requires_grad_(False)
            if (encoder.cfg.hidden, encoder.cfg.n_mels) != (self.cfg.acoustic.hidden,
                                                             self.cfg.acoustic.n_mels):
                raise AdapterMismatchError("the mel encoder's sizes do not fit this base",
                                           path=folder)
            self._parts["mel_encoder"] = encoder
        return self._parts["mel_encoder"]

    def speaker_encoder(self):
        """The shipped ECAPA-TDNN speaker encoder (``speaker_encoder/``), or None."""
        if "speaker_encoder" not in self._parts:
            from adavoice.models.speaker import SpeakerEncoder

            folder = self.folder / "speaker_encoder"
            encoder = None
            if folder.is_dir():
                encoder, mel = SpeakerEncoder.from_dir(folder)
                if mel != self.cfg.mel:
                    from adavoice.errors import ModelFormatError

                    raise ModelFormatError("the speaker encoder was trained on another mel "
                                           "front end", path=folder)
            self._parts["speaker_encoder"] = encoder
        return self._parts["speaker_encoder"]

    def speaker_centroids(self) -> torch.Tensor | None:
        """(n_speakers, D) unit mean speaker-encoder embeddings of the base speakers, in the
        base's speaker order, or None when the base ships no speaker encoder."""
        if "centroids" not in self._parts:
            from safetensors.torch import load_file

            path = self.folder / "speaker_encoder" / "centroids.safetensors"
            table = None
            if path.is_file() and self.speaker_encoder() is not None:
                stored = load_file(str(path))
                names = (self.speaker_encoder_speakers() or [])
                if sorted(names) == sorted(self.speakers):
                    order = [names.index(s) for s in self.speakers]
                    table = stored["centroids"].float()[order]
            self._parts["centroids"] = table
        return self._parts["centroids"]

    @torch.no_grad()
    def seen_speaker_similarities(self, mels: list[torch.Tensor]) -> torch.Tensor | None:
        """(n_speakers,) cosine between the clips' mean speaker embedding and each seen
        speaker's centroid; None when the base ships no speaker encoder. mels: (n_mels, T)."""
        centroids = self.speaker_centroids()
        if centroids is None:
            return None
        return centroids @ self.speaker_encoder().embed_many(mels)

    def speaker_encoder_speakers(self) -> list[str] | None:
        from adavoice.config import read_json

        path = self.folder / "speaker_encoder" / "config.json"
        return read_json(path).get("training", {}).get("speakers") if path.is_file() else None

    @property
    def speakers(self) -> list[str]:
        return list(self.cfg.speakers)

    @property
    def sample_rate(self) -> int:
        return self.cfg.mel.sample_rate_hz

    @property
    def content_hash(self) -> str:
        if self._hash is None:
            self._hash = content_hash(self.folder)
        return self._hash

    def speaker_id(self, speaker: str | None) -> int:
        if speaker is None:
            return 0
        if speaker not in self.cfg.speakers:
            raise UnknownSpeakerError(f"unknown speaker {speaker!r}; this model has "
                                      f"{len(self.cfg.speakers)} speakers")
        return self.cfg.speakers.index(speaker)

    def tokens(self, text: str) -> torch.Tensor:
        if text is None or not text.strip():
            raise EmptyTextError("the text is empty")
        return torch.tensor([self.processor.process(text).ids], dtype=torch.long)

    def vocoder(self, kind: str = "auto"):
        """The waveform renderer: ``neural`` (the base's ``vocoder/``), ``griffin-lim``, or
        ``auto`` (neural when the base ships one, else Griffin-Lim)."""
        if kind not in ("auto", "neural", "griffin-lim"):
            raise ConfigError(f"unknown vocoder {kind!r}", fix="use auto, neural or griffin-lim")
        has_neural = (self.folder / "vocoder" / "config.json").is_file()
        if kind == "neural" and not has_neural:
            raise MissingFileError("this base has no neural vocoder", path=self.folder / "vocoder",
                                   fix="use --vocoder griffin-lim, or train one")
        name = "neural" if kind == "neural" or (kind == "auto" and has_neural) else "griffin-lim"
        if name not in self._vocoders:
            if name == "neural":
                from adavoice.models.vocoder import NeuralVocoder, Vocoder

                vocoder, mel = Vocoder.from_dir(self.folder / "vocoder")
                if mel != self.cfg.mel:
                    from adavoice.errors import ModelFormatError

                    raise ModelFormatError("the vocoder was trained on another mel front end",
                                           path=self.folder / "vocoder")
                self._vocoders[name] = NeuralVocoder(vocoder)
            else:
                from adavoice.models.griffin_lim import GriffinLim

                self._vocoders[name] = GriffinLim(self.cfg.mel)
        return self._vocoders[name]

    def mel(self, text: str, voice, length_scale: float = 1.0, pitch_shift: float = 0.0,
            energy_scale: float = 1.0) -> torch.Tensor:
        """(n_mels, T) log-mel for ``text`` in ``voice`` (a VoiceCondition); ConfigError for
        knobs out of range (see :func:`check_knobs`)."""
        check_knobs(length_scale, pitch_shift, energy_scale)
        out = self.model.infer(self.tokens(text), voice, length_scale=length_scale,
                               pitch_shift_semitones=pitch_shift, energy_scale=energy_scale)
        return out.mel[0]

    @torch.no_grad()
    def synthesize(self, text: str, speaker: str | None = None, length_scale: float = 1.0,
                   pitch_shift: float = 0.0, energy_scale: float = 1.0,
                   vocoder: str = "auto") -> Audio:
        """Speak ``text`` as a seen speaker. ``pitch_shift`` is in semitones."""
        voice = self.model.speaker_voice(self.speaker_id(speaker))
        mel = self.mel(text, voice, length_scale, pitch_shift, energy_scale)
        wave = self.vocoder(vocoder)(mel)
        return Audio(wave.numpy(), self.sample_rate)


_SHARED: dict[str, BaseModel] = {}


class Voice:
    """An adapted voice: a few tensors beside a shared, frozen base model.

    >>> import tempfile
    >>> clips = SHIPPED_MODELS.parent / "examples" / "demo-voice"
    >>> voice = adapt("demo", clips, steps=2, max_utterances=6, progress=False)
    >>> folder = voice.save(Path(tempfile.mkdtemp()) / "slt")
    >>> again = Voice.load(folder)   # shares the base with every voice loaded in this process
    >>> again.kind, again.stored_parameters, again.synthesize("Hello there.").sample_rate
    ('cln', 2240, 22050)
    """

    def __init__(self, base: BaseModel, tensors: dict[str, torch.Tensor], config: dict):
        from adavoice.adapt.adapter import voice_from_tensors
        from adavoice.adapt.config import AdapterConfig

        self.base, self.tensors, self.config = base, tensors, config
        self.adapter_config = AdapterConfig.from_dict(config["adapter"])
        self.condition = voice_from_tensors(base.model, self.adapter_config, tensors)

    @classmethod
    def load(cls, folder: str | Path, base: BaseModel | str | Path | None = None) -> "Voice":
        """Load a bundle. ``base`` defaults to the one the bundle names, shared per process;
        AdapterMismatchError when the base is not the one the voice was made for."""
        from adavoice.adapt.bundle import check_base, read_bundle
        from adavoice.errors import ModelFormatError

        tensors, config = read_bundle(folder)
        if "adapter" not in config or "base" not in config:
            raise ModelFormatError("adapter_config.json lacks 'adapter' or 'base'", path=folder)
        if base is None:
            named = config["base"].get("name", "demo")
            try:
                base = BaseModel.shared(named)
            except MissingFileError as exc:
                raise MissingFileError(f"the base this voice names is not here ({named})",
                                       path=folder, fix="pass the base: Voice.load(folder, "
                                       "base=...) or `adavoice synth --voice V --model BASE`"
                                       ) from exc
        elif not isinstance(base, BaseModel):
            base = BaseModel.shared(base)
        check_base(config, base.content_hash, folder)
        try:
            return cls(base, tensors, config)
        except ModelFormatError as exc:
            raise ModelFormatError(exc.message, path=folder) from exc
        except (ConfigError, AttributeError, TypeError) as exc:
            raise ModelFormatError(f"adapter_config.json 'adapter' is not a valid adapter "
                                   f"config ({exc})", path=folder) from exc

    def save(self, folder: str | Path) -> Path:
        from adavoice.adapt.bundle import write_bundle

        return write_bundle(folder, self.tensors, self.config)

    @property
    def kind(self) -> str:
        return self.adapter_config.kind

    @property
    def stored_parameters(self) -> int:
        return int(sum(t.numel() for t in self.tensors.values()))

    def mel(self, text: str, length_scale: float | None = None, pitch_shift: float | None = None,
            energy_scale: float | None = None) -> torch.Tensor:
        """(n_mels, T) log-mel; knobs default to the bundle's defaults."""
        defaults = self.config.get("defaults", {})
        return self.base.mel(
            text, self.condition,
            length_scale if length_scale is not None else defaults.get("length_scale", 1.0),
            pitch_shift if pitch_shift is not None else defaults.get("pitch_shift", 0.0),
            energy_scale if energy_scale is not None else defaults.get("energy_scale", 1.0))

    @torch.no_grad()
    def synthesize(self, text: str, length_scale: float | None = None,
                   pitch_shift: float | None = None, energy_scale: float | None = None,
                   vocoder: str = "auto") -> Audio:
        mel = self.mel(text, length_scale, pitch_shift, energy_scale)
        return Audio(self.base.vocoder(vocoder)(mel).numpy(), self.base.sample_rate)
