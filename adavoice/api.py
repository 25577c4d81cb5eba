"""The public surface: BaseModel (load, speakers, synthesize).

>>> import adavoice
>>> callable(adavoice.BaseModel.load)
True
"""

from __future__ import annotations

from pathlib import Path

import torch

from adavoice.audio import Audio
from adavoice.errors import ConfigError, EmptyTextError, MissingFileError, UnknownSpeakerError
from adavoice.models.base_model import content_hash, load_base_model

SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "models"


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
        self.processor = TextProcessor.from_symbols(SymbolTable.from_dict(cfg.symbols))
        self._vocoder = None
        self._hash: str | None = None

    @classmethod
    def load(cls, name_or_path: str | Path = "demo") -> "BaseModel":
        folder = resolve_model_dir(name_or_path)
        model, cfg = load_base_model(folder)
        return cls(model, cfg, folder)

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
        """The waveform renderer. Griffin-Lim for now (``auto`` and ``griffin-lim`` agree);
        a neural vocoder will take ``auto`` once one ships in the model folder."""
        from adavoice.models.griffin_lim import GriffinLim

        if kind not in ("auto", "griffin-lim"):
            raise ConfigError(f"unknown vocoder {kind!r}", fix="use auto or griffin-lim")
        if self._vocoder is None:
            self._vocoder = GriffinLim(self.cfg.mel)
        return self._vocoder

    def mel(self, text: str, voice, length_scale: float = 1.0, pitch_shift: float = 0.0,
            energy_scale: float = 1.0) -> torch.Tensor:
        """(n_mels, T) log-mel for ``text`` in ``voice`` (a VoiceCondition)."""
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
