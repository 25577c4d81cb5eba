"""adavoice.data.features: the per-utterance mel/F0/energy cache and its precompute pass."""

from __future__ import annotations

import os

import numpy as np
import pytest

from adavoice.audio import MelFrontend
from adavoice.config import MelConfig
from adavoice.data import features as features_module
from adavoice.data.features import FeatureCache, Features, compute_features, precompute
from adavoice.data.manifest import Manifest, Utterance
from adavoice.errors import AudioReadError, ConfigError, MissingFileError
from tests.conftest import write_tone

RATE = 22050


@pytest.fixture
def counted(monkeypatch):
    """Count calls of the compute function the cache uses."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0])
        return compute_features(*args, **kwargs)

    monkeypatch.setattr(features_module, "compute_features", counting)
    return calls


def test_get_computes_once_then_reads_the_cache(tmp_path, counted):
    wav = write_tone(tmp_path / "a.wav", 0.3, amplitude=0.5)
    cache = FeatureCache(tmp_path / "cache", MelConfig())
    first = cache.get(wav)
    second = cache.get(wav)
    assert len(counted) == 1 and (cache.hits, cache.misses) == (1, 1)
    frames = first.num_samples // 256 + 1
    assert first.mel.shape == (80, frames) and first.mel.dtype == np.float32
    assert first.f0_hz.shape == first.energy.shape == (frames,)
    np.testing.assert_array_equal(first.mel, second.mel)
    np.testing.assert_array_equal(first.f0_hz, second.f0_hz)
    assert second.num_samples == first.num_samples == int(0.3 * RATE)
    # a fresh cache object over the same folder also reads from disk
    again = FeatureCache(tmp_path / "cache", MelConfig())
    again.get(wav)
    assert len(counted) == 1 and again.hits == 1
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 1
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_cached_features_match_a_direct_computation(tmp_path):
    wav = write_tone(tmp_path / "a.wav", 0.3, freq_hz=200.0, amplitude=0.5)
    cfg = MelConfig()
    cache = FeatureCache(tmp_path / "cache", cfg)
    cache.get(wav)
    stored = FeatureCache(tmp_path / "cache", cfg).get(wav)
    direct = compute_features(wav, cfg, "yin", MelFrontend(cfg))
    np.testing.assert_allclose(stored.mel, direct.mel)
    np.testing.assert_allclose(stored.energy, direct.energy)
    voiced = stored.f0_hz[stored.f0_hz > 0]
    assert len(voiced) > 0.8 * stored.num_frames and abs(np.median(voiced) - 200.0) < 6.0


def test_key_changes_with_file_config_and_pitch_method(tmp_path, counted):
    wav = write_tone(tmp_path / "a.wav", 0.3, amplitude=0.5)
    cache = FeatureCache(tmp_path / "cache", MelConfig())
    key = cache.key(wav)
    assert key == FeatureCache(tmp_path / "other", MelConfig()).key(wav)
    assert key != FeatureCache(tmp_path / "cache", MelConfig(n_mels=40)).key(wav)
    assert key != FeatureCache(tmp_path / "cache", MelConfig(), pitch_method="pyin").key(wav)
    cache.get(wav)
    write_tone(wav, 0.4, amplitude=0.5)  # new content, new size
    stat = wav.stat()
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cache.key(wav) != key
    refreshed = cache.get(wav)
    assert len(counted) == 2 and refreshed.num_samples == int(0.4 * RATE)


@pytest.mark.parametrize("damage", ["garbage", "truncate", "wrong_shape"])
def test_corrupt_entry_is_recomputed_and_overwritten(tmp_path, counted, damage):
    wav = write_tone(tmp_path / "a.wav", 0.3, amplitude=0.5)
    cfg = MelConfig()
    cache = FeatureCache(tmp_path / "cache", cfg)
    good = cache.get(wav)
    entry = cache.path_for(wav)
    if damage == "garbage":
        entry.write_bytes(b"\x00not safetensors")
    elif damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:40])
    else:
        bad = Features(good.mel[:, :3], good.f0_hz[:3], good.energy[:3], good.num_samples)
        cache._write(entry, bad)
    fixed = cache.get(wav)
    assert len(counted) == 2
    np.testing.assert_array_equal(fixed.mel, good.mel)
    assert FeatureCache(tmp_path / "cache", cfg).get(wav).num_frames == good.num_frames
    assert len(counted) == 2  # the overwritten entry is valid again


def test_audio_errors_propagate_and_bad_method_is_rejected(tmp_path):
    cache = FeatureCache(tmp_path / "cache", MelConfig())
    with pytest.raises(MissingFileError, match="nope.wav"):
        cache.get(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"junk" * 64)
    with pytest.raises(AudioReadError, match="junk.wav"):
        cache.get(tmp_path / "junk.wav")
    with pytest.raises(ConfigError, match="crepe"):
        FeatureCache(tmp_path / "cache", MelConfig(), pitch_method="crepe")


def test_resamples_to_the_config_rate(tmp_path):
    wav = write_tone(tmp_path / "a16k.wav", 0.5, 16000, amplitude=0.5)
    feats = FeatureCache(tmp_path / "cache", MelConfig()).get(wav)
    assert abs(feats.num_samples - RATE // 2) <= 1


def _manifest(tmp_path, names):
    rows = [
        Utterance(id=n, audio=f"{n}.wav", text=None, speaker="s", language="en", duration_s=0.3)
        for n in names
    ]
    for n in names:
        write_tone(tmp_path / f"{n}.wav", 0.3, freq_hz=150.0 + 20 * len(n), amplitude=0.5)
    return Manifest(rows, root=tmp_path)


def test_precompute_serial_fills_and_skips(tmp_path, counted):
    manifest = _manifest(tmp_path, ["a", "bb", "ccc"])
    cache = FeatureCache(tmp_path / "cache", MelConfig())
    assert precompute(manifest, cache, workers=1, progress=False) == 3
    assert precompute(manifest, cache, workers=1, progress=False) == 0
    assert len(counted) == 3


def test_precompute_with_two_worker_processes(tmp_path, monkeypatch):
    """One pool run (spawning costs seconds): good files land in the cache, in order, and the
    bad one's typed error reaches the caller with its path."""
    monkeypatch.setattr(features_module, "MIN_POOL_ITEMS", 0)
    manifest = _manifest(tmp_path, ["a", "bb", "zz"])
    (tmp_path / "zz.wav").write_bytes(b"junk" * 64)  # sorted last: a and bb finish first
    cache = FeatureCache(tmp_path / "cache", MelConfig())
    with pytest.raises(AudioReadError, match="zz.wav") as info:
        precompute(manifest, cache, workers=2, progress=False)
    assert info.value.path.endswith("zz.wav") and "(fix:" in str(info.value)
    assert str(info.value).count("(fix:") == 1
    assert cache.contains(tmp_path / "a.wav") and cache.contains(tmp_path / "bb.wav")
    cache.get(tmp_path / "bb.wav")
    assert (cache.hits, cache.misses) == (1, 0)


def test_precompute_runs_small_jobs_in_process(tmp_path, counted):
    """Below MIN_POOL_ITEMS no pool is spawned: the monkeypatched (in-process) compute sees all."""
    manifest = _manifest(tmp_path, ["a", "bb"])
    cache = FeatureCache(tmp_path / "cache", MelConfig())
    assert precompute(manifest, cache, workers=2, progress=False) == 2
    assert sorted(counted) == sorted(str(manifest.audio_path(u)) for u in manifest)
