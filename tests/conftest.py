"""Fixtures the test files share: one tone generator (in memory or written to a file) and one
tiny, randomly initialised English base model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

SR = 22050


def tone(seconds: float, freq_hz: float = 220.0, sample_rate_hz: int = SR,
         amplitude: float = 0.3, overtone: float = 0.0, noise: float = 0.0,
         seed: int = 0) -> np.ndarray:
    """float32 sine of ``freq_hz``, plus ``overtone`` x a sine at 2.5 x the frequency and
    gaussian ``noise`` (std) when asked; ``round(seconds * sample_rate_hz)`` samples."""
    t = np.arange(int(round(seconds * sample_rate_hz))) / sample_rate_hz
    wave = amplitude * np.sin(2 * np.pi * freq_hz * t)
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


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised tiny English base (graphemes or the pack's tokens), 2 speakers."""
    from adavoice.config import MelConfig
    from adavoice.models.acoustic import AcousticModel
    from adavoice.models.acoustic_config import AcousticConfig
    from adavoice.models.base_model import BaseModelConfig, save_base_model
    from adavoice.text import TextProcessor

    torch.manual_seed(0)
    symbols = TextProcessor.from_language("en").symbols
    acoustic = AcousticConfig.preset("tiny", n_symbols=len(symbols), n_speakers=2)
    cfg = BaseModelConfig(acoustic=acoustic, mel=MelConfig(), language="en",
                          symbols=symbols.to_dict(), speakers=["one", "two"])
    folder = tmp_path_factory.mktemp("tiny") / "model"
    folder.mkdir()
    return save_base_model(folder, AcousticModel(acoustic), cfg)
