"""The MOS judges prefer a real recording to the same recording buried in noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adavoice.audio import load_audio
from adavoice.evaluate import mos

CLIPS = Path(__file__).resolve().parent.parent / "examples" / "demo-voice-test"


def test_judges_prefer_clean_speech_to_noisy_speech():
    clip = sorted(CLIPS.glob("*.flac"))[0]
    clean = load_audio(clip, 22050)
    noisy = clean + np.random.default_rng(0).normal(0, 0.05, len(clean)).astype(np.float32)
    good, bad = mos.predicted_mos(clean, 22050), mos.predicted_mos(noisy, 22050)
    assert good["distillmos"] > bad["distillmos"] + 0.5, (good, bad)
    assert good["dnsmos_ovrl"] > bad["dnsmos_ovrl"] + 0.3, (good, bad)
    assert mos.to_judge_rate(clean[:100], 22050).shape == (8000,)  # padded to half a second


def test_a_missing_extra_is_a_typed_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_speechmos(name, *args, **kwargs):
        if name.startswith("speechmos"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_speechmos)
    with pytest.raises(mos.MissingExtraError, match="speechmos"):
        mos.dnsmos_scores(np.zeros(16000, dtype=np.float32), 16000)
