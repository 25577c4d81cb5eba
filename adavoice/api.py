"""The public surface: BaseModel (load, speakers, synthesize), Voice (an adapted voice:
load, save, synthesize) and adapt().

>>> import adavoice
>>> callable(adavoice.BaseModel.load) and callable(adavoice.adapt)
True
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from pathlib import Path

import torch

from adavoice.adapt.run import adapt  # noqa: F401  (also reachable as adavoice.adapt)
from adavoice.audio import Audio
from adavoice.errors import ConfigError, EmptyTextError, MissingFileError, UnknownSpeakerError
from adavoice.models.base_model import content_hash, load_base_model

SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "models"
MAX_LENGTH_SCALE = 10.0
MAX_PITCH_SHIFT = 24.0  # semitones: two octaves either way
# Longer text is spoken in pieces: the decoder's self-attention grows with the square of the
# frames (60,000 characters in one pass asked for 13.8 GB). 300 characters is ~20 s of speech.
# Normalisation can multiply a piece's tokens (digits become words), so a pass is also capped
# in tokens; a piece that is still longer (one 600-token "word") is a TextTooLongError.
MAX_CHARS_PER_PASS = 300
MAX_TOKENS_PER_PASS = 600
_CUTS = (r"(?<=[.!?;:])\s+", r"(?<=,)\s+", r"\s+")  # after sentence ends, commas, any space


def text_chunks(text: str, max_chars: int = MAX_CHARS_PER_PASS) -> list[str]:
    """``text`` in pieces of at most ``max_chars`` characters, cut after sentence ends, else
    after commas, else at spaces (a single longer word stays whole). Short text is one piece.

    >>> text_chunks("One. Two, three four.", max_chars=8)
    ['One.', 'Two,', 'three', 'four.']
    >>> text_chunks("Hello there.")
    ['Hello there.']
    """
    return _cut(" ".join(str(text).split()), max_chars, 0)


def _cut(text: str, max_chars: int, level: int) -> list[str]:
    if len(text) <= max_chars or level == len(_CUTS):
        return [text]
    chunks, current = [], ""
    for part in re.split(_CUTS[level], text):
        joined = f"{current} {part}" if current else part
        if len(joined) <= max_chars or not current:
            current = joined
        else:
            chunks.append(current)
            current = part
    chunks.append(current)
    return [piece for chunk in chunks for piece in _cut(chunk, max_chars, level + 1)]


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
    """A model folder path, or ``"demo"`` (any name under the repo's ``models/``). A folder
    that holds a ``config.json`` wins; an unrelated folder named ``demo`` does not hide the
    shipped model."""
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


@contextmanager
def _damaged_part(folder: Path, what: str):
    """Turn what a damaged part folder (its config.json or safetensors) raises into a
    ModelFormatError naming the folder; adavoice's own typed errors pass through."""
    from adavoice.errors import AdavoiceError, ModelFormatError

    try:
        yield
    except AdavoiceError:
        raise
    except Exception as exc:  # KeyError, TypeError, safetensors' own errors, shape mismatches
        raise ModelFormatError(f"the {what} is damaged ({type(exc).__name__}: "
                               f"{str(exc)[:200]})", path=folder) from exc


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
        if folder != Path(name_or_path):
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

            with _damaged_part(folder, "mel encoder"):
                made_for = read_json(folder / "config.json").get("training", {}).get(
                    "base_weights_sha256")
            if made_for is not None and made_for != self.content_hash:
                raise AdapterMismatchError("the mel encoder was trained on another base",
                                           path=folder,
                                           fix="retrain it: adavoice train mel-encoder --install")
            with _damaged_part(folder, "mel encoder"):
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
                with _damaged_part(folder, "speaker encoder"):
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
                with _damaged_part(path.parent, "speaker encoder's centroid table"):
                    stored = load_file(str(path))
                    names = (self.speaker_encoder_speakers() or [])
                    if sorted(names) == sorted(self.speakers):
                        order = [names.index(s) for s in self.speakers]
                        table = stored["centroids"].float()[order]
                        if table.ndim != 2 or table.shape[0] != len(self.speakers):
                            raise ValueError(f"centroids of shape {tuple(table.shape)}")
            self._parts["centroids"] = table
        return self._parts["centroids"]

    @torch.no_grad()
    def seen_speaker_similarities(self, mels: list[torch.Tensor]) -> torch.Tensor | None:
        """(n_speakers,) cosine between the clips' mean speaker embedding and each seen
        speaker's centroid; None when the base ships no speaker encoder. mels: (n_mels, T)."""
        centroids = self.speaker_centroids()
        if centroids is None:
            return None
        embedding = self.speaker_encoder().embed_many(mels)
        with _damaged_part(self.folder / "speaker_encoder", "speaker encoder's centroid table"):
            return centroids @ embedding

    def speaker_encoder_speakers(self) -> list[str] | None:
        from adavoice.config import read_json

        path = self.folder / "speaker_encoder" / "config.json"
        if not path.is_file():
            return None
        with _damaged_part(path.parent, "speaker encoder"):
            speakers = read_json(path).get("training", {}).get("speakers")
            if speakers is not None and not isinstance(speakers, list):
                raise TypeError("training.speakers is not a list")
            return speakers

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
        if not isinstance(text, str):
            raise EmptyTextError(f"the text must be a string, not {type(text).__name__}")
        if not text.strip():
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

                with _damaged_part(self.folder / "vocoder", "vocoder"):
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
        knobs out of range (see :func:`check_knobs`). Long text is spoken piece by piece
        (:meth:`token_pieces`) and the mels joined."""
        check_knobs(length_scale, pitch_shift, energy_scale)
        mels = [self.model.infer(tokens, voice, length_scale=length_scale,
                                 pitch_shift_semitones=pitch_shift,
                                 energy_scale=energy_scale).mel[0]
                for tokens in self.token_pieces(text)]
        return mels[0] if len(mels) == 1 else torch.cat(mels, dim=-1)

    def token_pieces(self, text: str) -> list[torch.Tensor]:
        """``text`` as one (1, N) token tensor, or, when it is over ``MAX_CHARS_PER_PASS``
        characters or ``MAX_TOKENS_PER_PASS`` tokens, as several: its normalised form cut by
        :func:`text_chunks`, pieces with nothing to say skipped. EmptyTextError when nothing
        is left; TextTooLongError for a piece that cannot be cut small enough."""
        from adavoice.errors import TextTooLongError

        if not isinstance(text, str):
            raise EmptyTextError(f"the text must be a string, not {type(text).__name__}")
        if len(text) <= MAX_CHARS_PER_PASS:
            tokens = self.tokens(text)
            if tokens.shape[1] <= MAX_TOKENS_PER_PASS:
                return [tokens]
        pieces, first_error = [], None
        for chunk in text_chunks(self.processor.normalizer(text).text):
            try:
                tokens = self.tokens(chunk)
            except EmptyTextError as exc:  # a piece of only punctuation says nothing
                first_error = first_error or exc
                continue
            if tokens.shape[1] > MAX_TOKENS_PER_PASS:
                raise TextTooLongError(f"a piece of the text gives {tokens.shape[1]} tokens "
                                       f"with no space or punctuation to cut at (at most "
                                       f"{MAX_TOKENS_PER_PASS}): {chunk[:40]!r}...")
            pieces.append(tokens)
        if not pieces:
            raise first_error
        return pieces

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


def _check_voice_config(config: dict, folder) -> None:
    """ModelFormatError unless the bundle config has the fields loading and synthesis read,
    of the right types (read_bundle has checked its type and format version)."""
    from adavoice.errors import ModelFormatError

    def bad(what: str):
        return ModelFormatError(f"adapter_config.json: {what}", path=folder)

    base, adapter = config.get("base"), config.get("adapter")
    if not isinstance(base, dict) or not isinstance(adapter, dict):
        raise bad("'base' and 'adapter' must both be present, as objects")
    if not all(isinstance(base.get(k, ""), str) for k in ("name", "content_hash")):
        raise bad("'base' name and content_hash must be strings")
    if config.get("kind", adapter.get("kind")) != adapter.get("kind", "cln"):
        raise bad(f"'kind' {config.get('kind')!r} disagrees with the adapter's "
                  f"{adapter.get('kind', 'cln')!r}")
    defaults = config.get("defaults", {})
    if not isinstance(defaults, dict):
        raise bad("'defaults' must be an object")
    knobs = {"length_scale": 1.0, "pitch_shift": 0.0, "energy_scale": 1.0}
    values = {k: defaults.get(k, v) for k, v in knobs.items()}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
        raise bad("'defaults' values must be numbers")
    try:
        check_knobs(**values)
    except ConfigError as exc:
        raise bad(f"'defaults' out of range ({exc.message})") from exc


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
        _check_voice_config(config, folder)
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
        except (ConfigError, AttributeError, TypeError, ValueError) as exc:
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
