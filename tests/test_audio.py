"""adavoice.audio: loading, resampling, the mel front end, pitch and energy."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from adavoice.audio import MelFrontend, audio_info, energy, load_audio, pitch
from adavoice.config import MelConfig
from adavoice.errors import AudioReadError, ConfigError, EmptyAudioError, MissingFileError
from tests.conftest import tone


def test_load_audio_resamples_16k_to_22050(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(0.5, 220, 16000, amplitude=0.5), 16000)
    wave = load_audio(path, 22050)
    assert wave.dtype == np.float32
    assert abs(len(wave) - round(8000 * 22050 / 16000)) <= 1
    kept = load_audio(path, None)
    assert len(kept) == 8000


def test_load_audio_mixes_stereo_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    left = tone(0.2, 220, 22050, amplitude=0.5)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    sf.write(path, stereo, 22050)
    wave = load_audio(path)
    assert wave.ndim == 1 and len(wave) == len(left)
    np.testing.assert_allclose(wave, left / 2, atol=1e-4)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, MissingFileError),
        (b"not audio at all" * 8, AudioReadError),
        ("empty", EmptyAudioError),
    ],
)
def test_load_audio_and_info_raise_typed_errors(tmp_path, content, error):
    path = tmp_path / "bad.wav"
    if content == "empty":
        sf.write(path, np.zeros(0, dtype=np.float32), 22050)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match="bad.wav"):
        load_audio(path)
    with pytest.raises(error, match="bad.wav"):
        audio_info(path)


@pytest.mark.parametrize("num_samples", [256, 1000, 22050])
def test_mel_frontend_shape(num_samples):
    cfg = MelConfig()
    fe = MelFrontend(cfg)
    mel = fe(torch.from_numpy(tone(num_samples / 22050, 440, 22050, amplitude=0.5)))
    expected_frames = num_samples // cfg.hop_length + 1
    assert tuple(mel.shape) == (cfg.n_mels, expected_frames)
    assert fe.num_frames(num_samples) == expected_frames
    batch = fe(torch.zeros(2, num_samples))
    assert tuple(batch.shape) == (2, cfg.n_mels, expected_frames)
    # silence sits exactly at the log floor
    assert torch.allclose(batch, torch.full_like(batch, float(np.log(cfg.log_floor))))


def test_mel_config_json_round_trip(tmp_path):
    cfg = MelConfig(sample_rate_hz=16000, hop_length=200, win_length=800, n_fft=1024, n_mels=64)
    assert MelConfig.from_dict(cfg.to_dict()) == cfg
    cfg.save(tmp_path / "mel.json")
    assert MelConfig.load(tmp_path / "mel.json") == cfg


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate_hz": 16000, "fmax_hz": 8001.0},
        {"fmax_hz": 12000.0},
        {"win_length": 2048},
        {"hop_length": 0},
        {"f0_min_hz": 700.0},
    ],
)
def test_mel_config_rejects_invalid_values(kwargs):
    with pytest.raises(ConfigError):
        MelConfig(**kwargs)


def test_yin_pitch_tracks_a_sine_and_is_zero_on_silence():
    cfg = MelConfig()
    rate = cfg.sample_rate_hz
    silence = np.zeros(rate // 2, dtype=np.float32)
    wave = np.concatenate([tone(1.0, 220, rate, amplitude=0.5), silence])
    f0 = pitch(wave, cfg, method="yin")
    assert f0.shape == (len(wave) // cfg.hop_length + 1,) and f0.dtype == np.float32
    tone_frames = f0[5 : rate // cfg.hop_length - 5]
    near = np.abs(tone_frames - 220.0) < 220.0 * 0.03
    assert near.mean() > 0.9
    silent_frames = f0[-(len(silence) // cfg.hop_length) + 5 :]
    assert np.all(silent_frames == 0.0)


def test_pitch_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown pitch method"):
        pitch(np.zeros(2048, dtype=np.float32), MelConfig(), method="crepe")


def test_energy_grows_with_loudness():
    cfg = MelConfig()
    quiet = energy(tone(0.3, 300, cfg.sample_rate_hz, amplitude=0.1), cfg)
    loud = energy(tone(0.3, 300, cfg.sample_rate_hz, amplitude=0.8), cfg)
    assert quiet.shape == loud.shape == (int(0.3 * cfg.sample_rate_hz) // cfg.hop_length + 1,)
    assert np.all(loud[2:-2] > quiet[2:-2] * 4)
