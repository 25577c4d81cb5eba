"""Adaptation data: a manifest folder or a plain audio folder -> clips with features.

In untranscribed mode no text is read at all: texts are dropped as soon as the files are listed.

>>> import tempfile, numpy as np, soundfile as sf
>>> from adavoice.config import MelConfig
>>> src = Path(tempfile.mkdtemp())
>>> t = np.arange(22050) / 22050
>>> sf.write(src / "a.wav", (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 22050)
>>> clips = load_clips(src, MelConfig(), max_utterances=20)
>>> len(clips), clips[0].text is None, clips[0].mel.shape[0]
(1, True, 80)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adavoice.audio import audio_info
from adavoice.config import MelConfig
from adavoice.data.features import Features, compute_features
from adavoice.data.manifest import Manifest, Utterance
from adavoice.data.readers import read_folder
from adavoice.errors import ConfigError, DatasetError, EmptyAudioError, TranscriptError
from adavoice.train.acoustic_data import ENERGY_FLOOR, interpolated_log_f0

# Shorter clips carry no voice to speak of, and the speaker encoder cannot frame them.
MIN_CLIP_S = 0.2
# Adaptation batches pad every clip to the longest one and the decoder's self-attention is
# quadratic in frames: one 10-minute clip (~26,000 frames) made a batch ask for 31-43 GB.
# Sentence-length clips (2-15 s) are what adaptation wants; 30 s leaves room for long ones.
MAX_CLIP_SECONDS = 30.0
# Read English runs at 12-18 characters a second (spaces and punctuation included; the shipped
# demo clips reach 18.7) and fast speech at ~25. Over 35, about twice the normal rate, the
# transcript cannot be what the clip says: the audio was cut short, or the line belongs to
# another clip. (A clip cut to half its length at a slow pace can still pass; this catches the
# gross cases, which otherwise train the voice on text it never hears.)
MAX_CHARS_PER_SECOND = 35.0


@dataclass
class AdaptationClip:
    """One clip. mel: (n_mels, T) log-mel; log_f0/log_energy: (T,); text None if untranscribed."""

    id: str
    mel: torch.Tensor
    log_f0: torch.Tensor
    log_energy: torch.Tensor
    text: str | None
    duration_s: float


def list_utterances(data: str | Path, transcripts: bool = True
                    ) -> tuple[list[Utterance], Manifest]:
    """Rows of ``data/manifest.jsonl`` if present, else every audio file of the folder
    (its ``metadata.csv`` is not opened when ``transcripts`` is False)."""
    data = Path(data)
    if (data / "manifest.jsonl").is_file():
        manifest = Manifest.load(data)
        return list(manifest), manifest
    rows = read_folder(data, transcripts=transcripts)
    return rows, Manifest(rows, data)


def load_clips(data: str | Path, mel_config: MelConfig, max_utterances: int = 20,
               untranscribed: bool = False, speaker: str | None = None) -> list[AdaptationClip]:
    """The first ``max_utterances`` clips (by id; of ``speaker`` if given) with features.
    DatasetError for data of several speakers without ``speaker`` or a clip over
    MAX_CLIP_SECONDS; EmptyAudioError for a clip that is too short or silent; TranscriptError
    for a transcript of more than MAX_CHARS_PER_SECOND characters a second of its audio."""
    if isinstance(max_utterances, bool) or not isinstance(max_utterances, numbers.Integral) \
            or max_utterances < 1:
        raise ConfigError(f"max_utterances must be a whole number >= 1, got {max_utterances!r}")
    max_utterances = int(max_utterances)
    rows, manifest = list_utterances(data, transcripts=not untranscribed)
    if speaker is not None:
        rows = [u for u in rows if u.speaker == speaker]
    voices = sorted({u.speaker for u in rows})
    if len(voices) > 1:
        raise DatasetError(f"the data holds {len(voices)} speakers ({', '.join(voices[:4])}"
                           f"{', ...' if len(voices) > 4 else ''}); a voice is one speaker",
                           path=data, fix="pass speaker= (CLI: --speaker) to pick one")
    rows = sorted(rows, key=lambda u: u.id)[:max_utterances]
    if not rows:
        raise DatasetError("no audio to adapt from", path=data,
                           fix="give a folder of audio files or a manifest folder")
    clips = []
    for row in rows:
        text = None if untranscribed else row.text
        feats = _clip_features(manifest.audio_path(row), row.id, text, mel_config)
        seconds = feats.num_samples / mel_config.sample_rate_hz
        clips.append(AdaptationClip(
            id=row.id, mel=torch.from_numpy(feats.mel),
            log_f0=torch.from_numpy(interpolated_log_f0(feats.f0_hz)),
            log_energy=torch.from_numpy(
                np.log(np.maximum(feats.energy, ENERGY_FLOOR)).astype(np.float32)),
            text=text, duration_s=seconds))
    return clips


def _clip_features(audio: Path, clip_id: str, text: str | None,
                   mel_config: MelConfig) -> Features:
    """Features of one clip after the checks that keep adaptation sane: DatasetError for a clip
    over MAX_CLIP_SECONDS (refused from the file header, before decoding it), EmptyAudioError
    for one too short or silent, TranscriptError for a transcript too long for the audio."""
    _, header_seconds = audio_info(audio)
    _check_not_too_long(audio, clip_id, header_seconds)
    feats = compute_features(audio, mel_config)
    seconds = feats.num_samples / mel_config.sample_rate_hz
    _check_not_too_long(audio, clip_id, seconds)  # a header may understate (e.g. MP3)
    if seconds < MIN_CLIP_S:
        raise EmptyAudioError(f"clip of {seconds * 1000:.0f} ms is too short to adapt from "
                              f"(at least {MIN_CLIP_S * 1000:.0f} ms)", path=audio,
                              fix="remove it from the adaptation folder")
    if float(feats.energy.max()) <= 1e-3:  # a full-band peak of ~4e-6 (-108 dBFS)
        raise EmptyAudioError("clip is silent", path=audio,
                              fix="remove it from the adaptation folder")
    if text is not None:
        chars = len(text.strip())
        if chars / seconds > MAX_CHARS_PER_SECOND:
            raise TranscriptError(
                f"clip {clip_id}: {chars} characters of transcript for {seconds:.2f} s of "
                f"audio is {chars / seconds:.0f} characters/s (read speech runs at 12-18, the "
                f"limit is {MAX_CHARS_PER_SECOND:.0f}): the audio is probably truncated, or the "
                "transcript belongs to another clip", path=audio,
                fix="check that the clip plays to its end and that its transcript line is "
                    "its own")
    return feats


def _check_not_too_long(audio: Path, clip_id: str, seconds: float) -> None:
    if seconds > MAX_CLIP_SECONDS:
        raise DatasetError(f"clip {clip_id} is {seconds:.1f} s long; adaptation takes clips of "
                           f"at most {MAX_CLIP_SECONDS:.0f} s (a batch pads to its longest clip)",
                           path=audio,
                           fix=f"cut it into sentences of at most {MAX_CLIP_SECONDS:.0f} s")
