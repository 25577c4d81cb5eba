"""Audio I/O and the one log-mel front end every model shares.

>>> import numpy as np
>>> fe = MelFrontend(MelConfig())
>>> wave = np.zeros(22050, dtype=np.float32)
>>> tuple(fe(torch.from_numpy(wave)).shape)   # (n_mels, T_frames)
(80, 87)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adavoice.atomic import atomic_path, output_error
from adavoice.config import MelConfig
from adavoice.errors import (
    AudioReadError,
    ConfigError,
    EmptyAudioError,
    MissingFileError,
    SampleRateError,
)


def load_audio(path: str | Path, sample_rate_hz: int | None = 22050) -> np.ndarray:
    """Read any format soundfile knows; return mono float32 samples in [-1, 1].

    ``sample_rate_hz=None`` keeps the file's own rate (see :func:`audio_info`).
    Raises MissingFileError, AudioReadError (unreadable, or NaN / infinite samples) or
    EmptyAudioError (no samples). Float files beyond full scale are clipped.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise MissingFileError("audio file not found", path=path)
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError)
        raise AudioReadError(f"cannot read audio ({exc})", path=path) from exc
    if data.shape[0] == 0:
        raise EmptyAudioError("audio file has zero samples", path=path)
    wave = data.mean(axis=1).astype(np.float32)
    if not np.isfinite(wave).all():
        raise AudioReadError("audio holds NaN or infinite samples", path=path,
                             fix="re-export the file from its source")
    if np.abs(wave).max() > 1.0:  # float files may exceed full scale; we promise [-1, 1]
        wave = np.clip(wave, -1.0, 1.0)
    if sample_rate_hz is not None and file_rate != sample_rate_hz:
        wave = resample(wave, file_rate, sample_rate_hz)
    return wave


def audio_info(path: str | Path) -> tuple[int, float]:
    """(sample_rate_hz, duration_s) of an audio file without decoding it."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise MissingFileError("audio file not found", path=path)
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioReadError(f"cannot read audio header ({exc})", path=path) from exc
    if info.frames == 0:
        raise EmptyAudioError("audio file has zero samples", path=path)
    return int(info.samplerate), info.frames / info.samplerate


def resample(wave: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc)."""
    if from_hz == to_hz:
        return wave
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), int(from_hz), int(to_hz))
    return out.numpy().astype(np.float32)


# suffix -> (soundfile format, subtype) of what save_audio writes
AUDIO_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}


def path_exists(path: str | Path) -> bool:
    """``Path.exists`` that turns what the OS refuses to look at (a name too long, a loop) into
    a ConfigError naming the path instead of an OSError."""
    try:
        return Path(path).exists()
    except OSError as exc:
        raise ConfigError(f"cannot use this path ({exc.strerror or exc})", path=path,
                          fix="choose a shorter or simpler path") from exc


def check_output_path(path: str | Path) -> tuple[str, str]:
    """(format, subtype) save_audio would write ``path`` in; ConfigError for a folder or a
    suffix other than .wav, .flac and .ogg. Cheap: call it before any slow work."""
    path = Path(path)
    if path_exists(path) and path.is_dir():
        raise ConfigError("is a folder, not an audio file name", path=path,
                          fix=f"name a file, e.g. {path / 'out.wav'}")
    if path.suffix.lower() not in AUDIO_FORMATS:
        raise ConfigError(f"cannot write audio as {path.suffix or 'a file with no suffix'!r}",
                          path=path, fix="end the name with .wav, .flac or .ogg")
    return AUDIO_FORMATS[path.suffix.lower()]


def save_audio(path: str | Path, wave: np.ndarray, sample_rate_hz: int) -> None:
    """Write float samples as 16-bit PCM WAV or FLAC, or OGG Vorbis, as the suffix says.

    Atomic, also with several writers on one path (:func:`adavoice.atomic.atomic_path`): the
    file at ``path`` is one writer's complete file or the earlier one, never a truncated one.
    Creates missing folders; the file gets the usual ``0o666`` less the umask. ConfigError for
    a folder, another suffix or NaN samples (nothing is written); OutputError (a ConfigError)
    when the path cannot be written.
    """
    save_audio_pieces(path, [wave], sample_rate_hz)


def save_audio_pieces(path: str | Path, waves, sample_rate_hz: int) -> int:
    """:func:`save_audio` for a wave that comes in pieces (an iterable of float arrays, e.g.
    long text spoken piece by piece): each piece is written as it comes, so memory holds one
    piece, not the whole. Complete or not at all as ``save_audio``: if a piece fails (an
    error in the iterable included), nothing appears at ``path``. Returns the samples written.
    """
    import soundfile as sf

    path = Path(path)
    fmt, subtype = check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, "audio", exc) from exc
    written = 0
    with atomic_path(path, "audio") as tmp:
        try:
            sink = sf.SoundFile(str(tmp), "w", int(sample_rate_hz), 1, subtype, format=fmt)
        except (OSError, RuntimeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
            raise output_error(path, "audio", exc) from exc
        with sink:
            for wave in waves:
                wave = np.asarray(wave, dtype=np.float32)
                if not np.isfinite(wave).all():
                    raise ConfigError("the samples hold NaN or infinite values; nothing was "
                                      "written", path=path)
                try:
                    sink.write(np.clip(wave, -1.0, 1.0))
                except (OSError, RuntimeError) as exc:
                    raise output_error(path, "audio", exc) from exc
                written += len(wave)
    return written


def check_sample_rate(actual_hz: int, expected_hz: int, path: str | Path | None = None) -> None:
    """Raise SampleRateError when a model is fed audio at a rate it was not built for."""
    if int(actual_hz) != int(expected_hz):
        raise SampleRateError(
            f"audio is {actual_hz} Hz but the model expects {expected_hz} Hz", path=path
        )


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney-normalised mel filters (librosa)."""
    import librosa

    return librosa.filters.mel(
        sr=cfg.sample_rate_hz, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
        fmin=cfg.fmin_hz, fmax=cfg.fmax_hz,
    ).astype(np.float32)


class MelFrontend(torch.nn.Module):
    """Waveform -> natural-log mel spectrogram, the single definition used everywhere.

    forward(wave: (T_samples,) or (B, T_samples) float in [-1, 1])
        -> (n_mels, T_frames) or (B, n_mels, T_frames), T_frames = T_samples // hop_length + 1.
    Centre padding is reflective, so frame ``t`` is centred on sample ``t * hop_length``.
    """

    def __init__(self, cfg: MelConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank(cfg)), persistent=False)

    def spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        """Complex STFT, (..., n_fft // 2 + 1, T_frames)."""
        # reflect padding needs more than n_fft // 2 samples; shorter clips get zero padding
        # (same frame count) instead of a RuntimeError from torch.
        pad_mode = "reflect" if wave.shape[-1] > self.cfg.n_fft // 2 else "constant"
        spec = torch.stft(
            wave,
            n_fft=self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            win_length=self.cfg.win_length,
            window=self.window,
            center=True,
            pad_mode=pad_mode,
            return_complex=True,
        )
        return spec

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """Linear STFT magnitude, (..., n_fft // 2 + 1, T_frames)."""
        return self.spectrum(wave).abs()

    def from_magnitude(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Log mel of a linear STFT magnitude from :meth:`magnitude`."""
        mel = torch.matmul(self.mel_basis, magnitude)
        return torch.log(torch.clamp(mel, min=self.cfg.log_floor))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.from_magnitude(self.magnitude(wave))

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.cfg.hop_length + 1


def energy(wave: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """Frame energy: L2 norm of each STFT magnitude frame, (T_frames,) float32 (FastSpeech 2)."""
    fe = MelFrontend(cfg)
    with torch.no_grad():
        mag = fe.magnitude(torch.from_numpy(np.ascontiguousarray(wave)))
    return torch.linalg.vector_norm(mag, dim=0).numpy().astype(np.float32)


def pitch(wave: np.ndarray, cfg: MelConfig, method: str = "yin") -> np.ndarray:
    """Frame F0 in Hz on the mel frame grid, (T_frames,) float32, 0 where unvoiced.

    ``method="pyin"`` is the accurate probabilistic tracker (slow, ~1x real time on this CPU);
    ``"yin"`` is ~50x faster; its voicing comes from the cumulative-mean-normalised difference
    and a frame-energy gate.
    """
    import librosa

    n_frames = len(wave) // cfg.hop_length + 1
    frame_length = max(cfg.win_length, 2048 if cfg.sample_rate_hz > 30000 else 1024)
    kwargs = dict(
        fmin=cfg.f0_min_hz, fmax=cfg.f0_max_hz, sr=cfg.sample_rate_hz,
        frame_length=frame_length, hop_length=cfg.hop_length, center=True,
    )
    if method == "pyin":
        f0, voiced, _ = librosa.pyin(wave, **kwargs)
        f0 = np.where(voiced, f0, 0.0)
    elif method == "yin":
        f0 = librosa.yin(wave, trough_threshold=0.1, **kwargs)
        f0 = np.where(_voiced_yin(wave, cfg, frame_length, f0), f0, 0.0)
    else:
        raise ValueError(f"unknown pitch method {method!r}; use 'yin' or 'pyin'")
    f0 = np.nan_to_num(f0, nan=0.0).astype(np.float32)
    return _fit_length(f0, n_frames)


def _voiced_yin(wave: np.ndarray, cfg: MelConfig, frame_length: int, f0: np.ndarray) -> np.ndarray:
    """Voicing for yin: a frame is voiced when it is not silent, has a low zero-crossing rate
    (fricatives and noise cross zero far more often than voiced speech) and f0 is in range."""
    import librosa

    rms = librosa.feature.rms(y=wave, frame_length=frame_length, hop_length=cfg.hop_length)[0]
    zcr = librosa.feature.zero_crossing_rate(
        wave, frame_length=frame_length, hop_length=cfg.hop_length
    )[0]
    n = min(len(rms), len(f0))
    loud = rms[:n] > max(1e-4, 0.05 * np.percentile(rms, 95))
    # 0.15 crossings per sample = 3.3 kHz at 22.05 kHz: above any voiced-speech rate
    tonal = zcr[:n] < 0.15
    in_range = (f0[:n] > cfg.f0_min_hz * 1.01) & (f0[:n] < cfg.f0_max_hz * 0.99)
    return _fit_length(loud & tonal & in_range, len(f0))


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) >= n:
        return x[:n]
    return np.pad(x, (0, n - len(x)))


@dataclass
class Audio:
    """A synthesized or loaded waveform.

    >>> a = Audio(np.zeros(2205, dtype=np.float32), 22050)
    >>> round(a.duration_s, 2)
    0.1
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def save(self, path: str | Path) -> Path:
        save_audio(path, self.samples, self.sample_rate)
        return Path(path)
