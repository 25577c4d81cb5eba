"""A small CTC recogniser (DESIGN §6): the shared log-mel, per-bin standardisation, frame
stacking (4 frames -> one step of 46 ms), a ``torchaudio.models.Conformer`` and a linear layer
to the symbol table, whose id 0 (the pad) is the CTC blank. Greedy decoding.

>>> cfg = AsrConfig.tiny(n_tokens=12)
>>> model = CtcRecogniser(cfg).eval()
>>> log_probs, lengths = model(torch.randn(2, 80, 41), torch.tensor([41, 20]))
>>> tuple(log_probs.shape), lengths.tolist()
((2, 10, 12), [10, 5])
>>> best_path = torch.tensor([[0, 3, 3, 0, 3, 4, 4]])
>>> greedy_ids(nn.functional.one_hot(best_path, 5).float(), torch.tensor([7]))
[[3, 3, 4]]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from adavoice.config import JsonConfig, MelConfig
from adavoice.errors import ConfigError, ModelFormatError

KIND = "adavoice-asr"
LM_FILE = "lm.json"  # an optional character n-gram beside the weights (adavoice.models.ctc_decode)
DECODERS = ("auto", "greedy", "beam")  # auto: beam with the n-gram when the folder has one


@dataclass(frozen=True)
class AsrConfig(JsonConfig):
    n_tokens: int = 64
    n_mels: int = 80
    stack: int = 4  # frames stacked into one encoder step (subsampling)
    dim: int = 144
    layers: int = 6
    heads: int = 4
    ffn: int = 576
    kernel: int = 15
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.dim % self.heads or min(self.n_tokens, self.stack, self.layers) < 1:
            raise ConfigError("AsrConfig: dim must divide by heads; sizes must be >= 1")
        if self.kernel % 2 == 0:
            raise ConfigError("AsrConfig: the convolution kernel must be odd")

    @classmethod
    def tiny(cls, **overrides) -> "AsrConfig":
        return cls(**{"dim": 32, "layers": 1, "heads": 2, "ffn": 64, "kernel": 3, **overrides})

    @classmethod
    def small(cls, **overrides) -> "AsrConfig":
        """~2.9 M parameters: the shipped CPU preset."""
        return cls(**overrides)

    @classmethod
    def preset(cls, name: str, **overrides) -> "AsrConfig":
        if name not in ("tiny", "small"):
            raise ConfigError(f"unknown ASR preset {name!r}", fix="tiny | small")
        return getattr(cls, name)(**overrides)

    def replace(self, **changes) -> "AsrConfig":
        return dataclasses.replace(self, **changes)


class CtcRecogniser(nn.Module):
    """forward(mel (B, n_mels, T) natural-log mel, lengths (B,) frames) ->
    (log-probabilities (B, T // stack, n_tokens), step lengths (B,))."""

    def __init__(self, cfg: AsrConfig):
        super().__init__()
        from torchaudio.models import Conformer

        self.cfg = cfg
        # per-bin mean and std of the training mels; set by training, saved with the weights
        self.register_buffer("mel_mean", torch.full((cfg.n_mels,), -5.0))
        self.register_buffer("mel_std", torch.full((cfg.n_mels,), 2.5))
        self.project = nn.Linear(cfg.n_mels * cfg.stack, cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.encoder = Conformer(input_dim=cfg.dim, num_heads=cfg.heads, ffn_dim=cfg.ffn,
                                 num_layers=cfg.layers, depthwise_conv_kernel_size=cfg.kernel,
                                 dropout=cfg.dropout)
        self.out = nn.Linear(cfg.dim, cfg.n_tokens)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor):
        stack = self.cfg.stack
        steps = mel.shape[-1] // stack
        x = (mel - self.mel_mean[:, None]) / self.mel_std[:, None]
        x = x[..., :steps * stack].transpose(1, 2)  # (B, T, n_mels)
        x = x.reshape(x.shape[0], steps, stack * self.cfg.n_mels)
        step_lengths = torch.clamp(lengths // stack, min=1, max=max(steps, 1))
        x = self.dropout(self.project(x))
        x, step_lengths = self.encoder(x, step_lengths)
        return self.out(x).log_softmax(-1), step_lengths

    # ---- I/O ----------------------------------------------------------------------------------
    def save(self, folder: str | Path, mel: MelConfig, symbols: dict, training: dict,
             half: bool = False) -> Path:
        from adavoice.artifacts import write_artifact

        return write_artifact(folder, KIND, {"asr": self.cfg.to_dict(), "mel": mel.to_dict(),
                                             "symbols": symbols, "training": training},
                              self.state_dict(), half)

    @classmethod
    def from_dir(cls, folder: str | Path) -> tuple["CtcRecogniser", MelConfig, dict]:
        """(eval-mode model, mel settings, symbol table dict) from an ASR folder."""
        from adavoice.artifacts import damaged, load_weights, read_artifact

        config, state = read_artifact(folder, KIND, "speech recogniser")
        with damaged(folder, "speech recogniser"):
            model = cls(AsrConfig.from_dict(config["asr"]))
            mel = MelConfig.from_dict(config["mel"])
            symbols = dict(config["symbols"])
        if len(symbols.get("symbols", [])) != model.cfg.n_tokens:
            raise ModelFormatError("the symbol table does not fit the output layer",
                                   path=Path(folder) / "config.json")
        return load_weights(model, state, folder).eval(), mel, symbols


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0
               ) -> list[list[int]]:
    """Best path per row: argmax per step, repeats merged, blanks dropped."""
    best = log_probs.argmax(-1)
    out = []
    for row, length in zip(best, lengths.tolist(), strict=True):
        ids, previous = [], None
        for token in row[:length].tolist():
            if token != previous and token != blank:
                ids.append(token)
            previous = token
        out.append(ids)
    return out


def resolve_asr_dir(name_or_path: str | Path) -> Path:
    """An ASR folder, or a model folder (or shipped name) that carries one in ``asr/``."""
    from adavoice.errors import MissingFileError
    from adavoice.models.base_model import resolve_model_dir

    path = Path(name_or_path)
    if (path / "config.json").is_file() and not (path / "asr").is_dir():
        return path
    folder = resolve_model_dir(name_or_path) if not path.is_dir() else path
    if (folder / "asr" / "config.json").is_file():
        return folder / "asr"
    if (folder / "config.json").is_file():
        return folder
    raise MissingFileError("no speech recogniser here (an ASR folder, or a model folder with "
                           "asr/)", path=name_or_path,
                           fix="train one: adavoice train asr DATA --out DIR")


class Recogniser:
    """A trained recogniser with its mel front end: ``transcribe`` audio files, ``evaluate``
    a corpus (manifest folder, or a folder of audio with ``metadata.csv``).

    ``decoder``: ``greedy`` (best token per step), ``beam`` (CTC prefix beam search, with the
    folder's character n-gram ``lm.json`` when it has one) or ``auto`` (beam when there is an
    n-gram, else greedy)."""

    def __init__(self, model: CtcRecogniser, mel: MelConfig, symbols: dict, folder: Path,
                 lm=None, decoder: str = "auto"):
        from adavoice.text.symbols import SymbolTable

        if decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {decoder!r}", fix=" | ".join(DECODERS))
        self.model, self.mel, self.folder = model.eval(), mel, folder
        self.symbols = SymbolTable.from_dict(symbols)
        self.lm = lm
        self.decoder = ("beam" if lm is not None else "greedy") if decoder == "auto" else decoder

    @classmethod
    def load(cls, name_or_path: str | Path, decoder: str = "auto") -> "Recogniser":
        from adavoice.models.ctc_decode import CharNgram

        folder = resolve_asr_dir(name_or_path)
        model, mel, symbols = CtcRecogniser.from_dir(folder)
        lm = CharNgram.load(folder / LM_FILE) if (folder / LM_FILE).is_file() else None
        return cls(model, mel, symbols, folder, lm, decoder)

    def mels(self, paths) -> list[torch.Tensor]:
        from adavoice.audio import MelFrontend, load_audio

        frontend = MelFrontend(self.mel)
        with torch.no_grad():
            return [frontend(torch.from_numpy(load_audio(p, self.mel.sample_rate_hz)))
                    for p in paths]

    def transcribe(self, paths) -> list[str]:
        """Greedy transcripts (graphemes: text; phonemes: IPA) of audio files."""
        from adavoice.train.asr import transcribe_mels

        return transcribe_mels(self.model, self.mels(paths), list(self.symbols.symbols),
                               decoder=self.decoder, lm=self.lm)

    def evaluate(self, data: str | Path) -> dict:
        """{"cer", "wer" (fractions, pooled), "utterances", "rows": per-utterance} on every
        transcribed utterance of ``data``; references go through the recogniser's own text
        front end (numbers spelt out; phonemes for a phoneme recogniser)."""
        from adavoice.data.manifest import Manifest
        from adavoice.data.readers import read_folder
        from adavoice.errors import DatasetError, EmptyTextError
        from adavoice.text.tokenize import TextProcessor
        from adavoice.train.asr import score_rows, token_text

        data = Path(data)
        if (data / "manifest.jsonl").is_file():
            manifest = Manifest.load(data)
        else:
            manifest = Manifest(read_folder(data, self.symbols.language), data)
        processor = TextProcessor.from_symbols(self.symbols, emit_warnings=False)
        rows, refs = [], []
        for row in manifest:
            if not row.text:
                continue
            try:
                refs.append(token_text(processor.process(row.text).tokens))
            except EmptyTextError:
                continue
            rows.append(row)
        if not rows:
            raise DatasetError("no transcribed utterances to score", path=data,
                               fix="a manifest folder, or audio with metadata.csv")
        return score_rows(rows, refs, self.transcribe([manifest.audio_path(r) for r in rows]))
