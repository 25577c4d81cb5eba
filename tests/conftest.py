"""Fixtures and helpers the test files share: one tone generator (in memory, written to a file,
or as a folder of clips with their transcripts), one tiny randomly initialised base model (and
a voice adapted from nothing on it), the tiny acoustic items the training tests learn, and the
in-process CLI runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

SR = 22050


# ---- sound ------------------------------------------------------------------------------------

def tone(seconds: float, freq_hz: float = 220.0, sample_rate_hz: int = SR,
         amplitude: float = 0.3, overtone: float = 0.0, noise: float = 0.0,
         seed: int = 0, harmonics: int = 1) -> np.ndarray:
    """float32 sine of ``freq_hz`` (with ``harmonics`` > 1: the first ``harmonics`` multiples,
    the k-th at ``amplitude / k``), plus ``overtone`` x a sine at 2.5 x the frequency and
    gaussian ``noise`` (std) when asked; ``round(seconds * sample_rate_hz)`` samples."""
    t = np.arange(int(round(seconds * sample_rate_hz))) / sample_rate_hz
    wave = sum(amplitude / k * np.sin(2 * np.pi * k * freq_hz * t)
               for k in range(1, harmonics + 1))
    if overtone:
        wave = wave + overtone * np.sin(2 * np.pi * 2.5 * freq_hz * t)
    if noise:
        wave = wave + np.random.default_rng(seed).normal(0, noise, len(t))
    return wave.astype(np.float32)


def write_tone(path: Path, seconds: float, sample_rate_hz: int = SR, **kwargs) -> Path:
    """:func:`tone` written to ``path`` (folders made) in the format its suffix names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, sample_rate_hz=sample_rate_hz, **kwargs), sample_rate_hz)
    return path


def write_clips(folder: Path, texts: Sequence[str] | int, *, transcripts: str | None = None,
                name: str = "c{:02d}", seconds: float = 0.6, freq_hz: float = 120.0,
                step_hz: float = 10.0, speaker_of: Callable[[int], str] | None = None,
                silent: Sequence[int] = (), **tone_kwargs) -> Path:
    """A tiny corpus: clip ``i`` is ``name.format(i)``.wav, a tone at ``freq_hz + i * step_hz``
    (noise seeded by ``i``; silence for the indices in ``silent``). ``texts`` (or a clip count)
    and ``transcripts``: None writes audio only, "metadata" a metadata.csv (``stem|text``),
    "manifest" a manifest.jsonl (speaker ``speaker_of(i)`` or "new", English)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = [""] * texts if isinstance(texts, int) else list(texts)
    stems = [name.format(i) for i in range(len(texts))]
    for i, stem in enumerate(stems):
        wave = tone(seconds, freq_hz + i * step_hz, seed=i, **tone_kwargs)
        sf.write(folder / f"{stem}.wav", np.zeros_like(wave) if i in silent else wave, SR)
    if transcripts == "metadata":
        lines = [f"{stems[i]}|{text}" for i, text in enumerate(texts)]
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif transcripts == "manifest":
        rows = [{"id": stems[i], "audio": f"{stems[i]}.wav", "text": text,
                 "speaker": speaker_of(i) if speaker_of else "new", "language": "en",
                 "duration_s": seconds} for i, text in enumerate(texts)]
        (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif transcripts is not None:
        raise ValueError(f"transcripts={transcripts!r}: use None, 'metadata' or 'manifest'")
    return folder


# ---- a tiny base model and a voice on it ------------------------------------------------------

def save_tiny_base(folder: Path, speakers: Sequence[str] = ("one", "two"),
                   tokenizer: str | None = None, seed: int = 0) -> Path:
    """A randomly initialised tiny English base saved to ``folder``: the pack's default
    tokenizer unless ``tokenizer`` names one, one speaker per name in ``speakers``."""
    from adavoice.config import MelConfig
    from adavoice.models.acoustic import AcousticModel
    from adavoice.models.acoustic_config import AcousticConfig
    from adavoice.models.base_model import BaseModelConfig, save_base_model
    from adavoice.text import TextProcessor

    torch.manual_seed(seed)
    symbols = TextProcessor.from_language("en", tokenizer=tokenizer).symbols
    acoustic = AcousticConfig.tiny(n_symbols=len(symbols), n_speakers=len(speakers))
    cfg = BaseModelConfig(acoustic=acoustic, mel=MelConfig(), language="en",
                          symbols=symbols.to_dict(), speakers=list(speakers))
    Path(folder).mkdir(parents=True, exist_ok=True)
    return save_base_model(folder, AcousticModel(acoustic), cfg)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """The tiny base (the pack's tokens, speakers "one" and "two"), one per test module; tests
    that damage it work on a copy."""
    return save_tiny_base(tmp_path_factory.mktemp("tiny") / "model")


def tiny_voice(folder: Path):
    """(base, adapter tensors, voice config, Voice): an untrained CLN voice on the base in
    ``folder``, built without adapting."""
    from adavoice.adaptation.config import AdapterConfig
    from adavoice.adaptation.kinds import adapter_for
    from adavoice.api import BaseModel, Voice

    base = BaseModel.load(folder)
    cfg = AdapterConfig.for_kind("cln")
    adapter = adapter_for(base.model, cfg, base.model.speaker_embedding.weight[0],
                          base.model.speaker_utterance_vectors[0])
    config = {"name": "tiny",
              "base": {"name": base.name, "content_hash": base.content_hash},
              "adapter": cfg.to_dict()}
    return base, adapter.export(), config, Voice(base, adapter.export(), config)


# ---- tiny acoustic items (training and model tests; tests/ddp_worker.py) -----------------------

def make_items(seed: int = 0, count: int = 3):
    """``count`` AcousticItems over 9 tokens whose mels depend on the tokens (learnable)."""
    from adavoice.train.acoustic_data import AcousticItem

    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        n = int(rng.integers(4, 8))
        t = n * 4 + int(rng.integers(0, 5))
        ids = rng.integers(1, 10, size=n)
        # a mel that depends on the tokens, so the model can learn it
        per_token = rng.normal(size=(80, 10)).astype(np.float32)
        mel = np.repeat(per_token[:, ids], t // n + 1, axis=1)[:, :t] - 4.0
        items.append(AcousticItem(ids=ids.astype(np.int64), speaker=i % 2, mel=mel,
                                  log_f0=np.full(t, 5.0, np.float32) + rng.normal(0, .1, t),
                                  log_energy=rng.normal(size=t).astype(np.float32),
                                  utterance_id=f"u{i}"))
    return items


def tiny_model(seed: int = 0):
    """A tiny AcousticModel for :func:`make_items` (10 symbols, 2 speakers, no dropout)."""
    from adavoice.models.acoustic import AcousticModel
    from adavoice.models.acoustic_config import AcousticConfig

    torch.manual_seed(seed)
    return AcousticModel(AcousticConfig.tiny(n_symbols=10, n_speakers=2, dropout=0.0,
                                             variance_dropout=0.0))


def run_model(model, batch):
    return model(batch.tokens, batch.text_mask, batch.speakers, batch.mel, batch.frame_mask,
                 batch.log_f0, batch.log_energy, batch.log_prior)


# ---- the CLI, in process ----------------------------------------------------------------------

def run_cli(args, capsys) -> tuple[int, str]:
    """(exit code, stderr) of ``adavoice ARGS`` run in-process."""
    from adavoice.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]
