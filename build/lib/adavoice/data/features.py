"""Per-utterance feature cache: log-mel, F0 and energy, computed once, stored as safetensors.

The key is the sha1 of (resolved audio path, file size, mtime_ns, MelConfig JSON, pitch
method, cache format version): editing a file, touching it, or changing any front-end number
gives a new key, so a stale entry is never read. Entries are written atomically (temp file +
``os.replace``) and a damaged entry is recomputed and overwritten rather than trusted.

>>> import tempfile, numpy as np, soundfile as sf
>>> tmp = Path(tempfile.mkdtemp())
>>> sf.write(tmp / "a.wav", np.zeros(22050, dtype=np.float32), 22050)
>>> cache = FeatureCache(tmp / "cache", MelConfig())
>>> feats = cache.get(tmp / "a.wav")
>>> feats.mel.shape, feats.f0_hz.shape, feats.num_samples
((80, 87), (87,), 22050)
>>> _ = cache.get(tmp / "a.wav"); (cache.hits, cache.misses)
(1, 1)
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adavoice.audio import MelFrontend, energy, load_audio, pitch
from adavoice.config import MelConfig
from adavoice.data.manifest import Manifest
from adavoice.errors import ConfigError, MissingFileError

# 2: load_audio clips float files beyond full scale (entries of version 1 may hold features of
# the unclipped samples)
FORMAT_VERSION = 2
PITCH_METHODS = ("yin", "pyin")
# Spawning a worker imports torch and librosa (seconds); one short utterance takes ~50 ms with
# yin, so below this many missing entries a pool costs more than it saves.
MIN_POOL_ITEMS = 64


@dataclass
class Features:
    """Frame-level features of one utterance on the mel frame grid.

    mel: (n_mels, T_frames) float32 natural-log mel; f0_hz: (T_frames,) float32, 0 = unvoiced;
    energy: (T_frames,) float32 L2 norm of each STFT magnitude frame; num_samples: waveform
    length at the config's sample rate (T_frames = num_samples // hop_length + 1).

    >>> f = Features(np.zeros((80, 3), np.float32), np.zeros(3, np.float32),
    ...              np.zeros(3, np.float32), 600)
    >>> f.num_frames
    3
    """

    mel: np.ndarray
    f0_hz: np.ndarray
    energy: np.ndarray
    num_samples: int

    @property
    def num_frames(self) -> int:
        return int(self.mel.shape[1])


def compute_features(
    audio_path: str | Path, mel_config: MelConfig, pitch_method: str = "yin",
    frontend: MelFrontend | None = None,
) -> Features:
    """Load ``audio_path`` at the config's rate and compute mel, F0 and energy (no caching)."""
    wave = load_audio(audio_path, mel_config.sample_rate_hz)
    frontend = frontend if frontend is not None else MelFrontend(mel_config)
    with torch.no_grad():
        mel = frontend(torch.from_numpy(wave)).numpy().astype(np.float32)
    return Features(
        mel=mel,
        f0_hz=pitch(wave, mel_config, method=pitch_method).astype(np.float32),
        energy=energy(wave, mel_config).astype(np.float32),
        num_samples=len(wave),
    )


class FeatureCache:
    """Directory of ``<key[:2]>/<key>.safetensors`` files, one per (audio file, front end).

    ``hits``/``misses`` count how many ``get`` calls were served from disk / computed.

    >>> import tempfile
    >>> cache = FeatureCache(tempfile.mkdtemp(), MelConfig(), pitch_method="yin")
    >>> (cache.hits, cache.misses)
    (0, 0)
    """

    def __init__(self, cache_dir: str | Path, mel_config: MelConfig, pitch_method: str = "yin"):
        if pitch_method not in PITCH_METHODS:
            raise ConfigError(
                f"unknown pitch method {pitch_method!r}", fix=f"use one of {PITCH_METHODS}"
            )
        self.cache_dir = Path(cache_dir)
        self.mel_config = mel_config
        self.pitch_method = pitch_method
        self.hits = 0
        self.misses = 0
        self._frontend: MelFrontend | None = None

    def key(self, audio_path: str | Path) -> str:
        """sha1 hex digest identifying this file's current content and this front end."""
        path = Path(audio_path).resolve()
        try:
            stat = path.stat()
        except FileNotFoundError as exc:
            raise MissingFileError("audio file not found", path=path) from exc
        identity = {
            "path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "mel": self.mel_config.to_dict(), "pitch": self.pitch_method,
            "format_version": FORMAT_VERSION,
        }
        return hashlib.sha1(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()

    def path_for(self, audio_path: str | Path) -> Path:
        """Where the entry for ``audio_path`` lives (whether or not it exists yet)."""
        key = self.key(audio_path)
        return self.cache_dir / key[:2] / f"{key}.safetensors"

    def contains(self, audio_path: str | Path) -> bool:
        return self.path_for(audio_path).is_file()

    def get(self, audio_path: str | Path) -> Features:
        """Features of ``audio_path``: from the cache when a valid entry exists, else computed
        and stored. Audio errors (MissingFileError, AudioReadError, ...) propagate."""
        entry = self.path_for(audio_path)
        cached = self._read(entry) if entry.is_file() else None
        if cached is not None:
            self.hits += 1
            return cached
        if self._frontend is None:
            self._frontend = MelFrontend(self.mel_config)
        features = compute_features(audio_path, self.mel_config, self.pitch_method, self._frontend)
        self._write(entry, features)
        self.misses += 1
        return features

    def _read(self, entry: Path) -> Features | None:
        """The stored features, or None when the file is damaged or inconsistent."""
        from safetensors.numpy import load_file

        try:
            tensors = load_file(str(entry))
            features = Features(
                mel=tensors["mel"], f0_hz=tensors["f0_hz"], energy=tensors["energy"],
                num_samples=int(tensors["num_samples"][0]),
            )
        except Exception:  # safetensors raises several types for truncated/garbage files
            return None
        frames = features.num_samples // self.mel_config.hop_length + 1
        shapes_ok = (
            features.mel.shape == (self.mel_config.n_mels, frames)
            and features.f0_hz.shape == (frames,)
            and features.energy.shape == (frames,)
        )
        return features if shapes_ok else None

    def _write(self, entry: Path, features: Features) -> None:
        from safetensors.numpy import save_file

        entry.parent.mkdir(parents=True, exist_ok=True)
        # pid in the temp name: two workers filling the same entry never share a temp file
        tmp = entry.with_name(f"{entry.name}.{os.getpid()}.part")
        tensors = {
            "mel": np.ascontiguousarray(features.mel, dtype=np.float32),
            "f0_hz": np.ascontiguousarray(features.f0_hz, dtype=np.float32),
            "energy": np.ascontiguousarray(features.energy, dtype=np.float32),
            "num_samples": np.array([features.num_samples], dtype=np.int64),
        }
        save_file(tensors, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
        os.replace(tmp, entry)


def precompute(
    manifest: Manifest, cache: FeatureCache, workers: int = 2, progress: bool = True
) -> int:
    """Fill ``cache`` for every utterance of ``manifest``; return how many were computed.

    Entries already present are skipped. ``workers > 1`` uses a process pool (spawned, one
    torch thread each, so ``workers`` is the number of cores used) once at least
    ``MIN_POOL_ITEMS`` entries are missing; otherwise the work runs in this process.
    The first audio error stops the run and is raised here with its file named.
    """
    from adavoice.progress import progress_bar

    paths = sorted({str(manifest.audio_path(u)) for u in manifest})
    todo = [p for p in paths if not cache.contains(p)]
    bar = progress_bar(len(todo), "features", unit="utt", disable=not progress)
    computed = 0
    with bar:
        if workers <= 1 or len(todo) < max(2, MIN_POOL_ITEMS):
            for path in todo:
                cache.get(path)
                computed += 1
                bar.update(1)
            return computed
        import multiprocessing

        init_args = (str(cache.cache_dir), cache.mel_config.to_dict(), cache.pitch_method)
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=init_args,
        ) as pool:
            chunksize = max(1, min(16, len(todo) // (4 * workers)))
            try:
                for _ in pool.map(_fill_one, todo, chunksize=chunksize):
                    computed += 1
                    bar.update(1)
            except BaseException:
                pool.shutdown(cancel_futures=True)  # do not wait for the rest of the corpus
                raise
    return computed


_WORKER_CACHE: FeatureCache | None = None


def _init_worker(cache_dir: str, mel_config: dict, pitch_method: str) -> None:
    # one intra-op thread per process: the pool already uses one process per core
    torch.set_num_threads(1)
    global _WORKER_CACHE
    _WORKER_CACHE = FeatureCache(cache_dir, MelConfig.from_dict(mel_config), pitch_method)


def _fill_one(path: str) -> None:
    """Compute one entry in a worker; typed errors pickle (state included) back to the parent."""
    assert _WORKER_CACHE is not None, "worker used without _init_worker"
    _WORKER_CACHE.get(path)
