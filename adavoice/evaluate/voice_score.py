"""Score a voice (a seen base speaker or an adapted Voice) against real recordings of the target:
synthesize each reference sentence, then MCD / log-F0 RMSE / V/UV (and WER with a recogniser)
through ``evaluate_dirs``, plus speaker similarity: the cosine between the speaker-encoder
embedding of the synthesized mels and that of the target's real clips.

Speaker similarity is taken on the acoustic model's mels, before any vocoder, so it measures the
voice the adapter learned rather than vocoder artefacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from adavoice.audio import MelFrontend, load_audio, save_audio
from adavoice.evaluate.report import evaluate_dirs


@torch.no_grad()
def real_mels(paths: list[Path], base) -> list[torch.Tensor]:
    frontend = MelFrontend(base.cfg.mel)
    return [frontend(torch.from_numpy(load_audio(p, base.sample_rate))) for p in paths]


@torch.no_grad()
def speaker_similarity(base, hyp_mels: list[torch.Tensor], target_embedding: torch.Tensor
                       ) -> float | None:
    """Mean over utterances of cos(embed(hyp mel), target embedding); None without encoder."""
    encoder = base.speaker_encoder()
    if encoder is None:
        return None
    scores = [float(encoder.embed(m.unsqueeze(0))[0] @ target_embedding) for m in hyp_mels]
    return float(np.mean(scores))


def target_embedding(base, reference_paths: list[Path]) -> torch.Tensor | None:
    encoder = base.speaker_encoder()
    return None if encoder is None else encoder.embed_many(real_mels(reference_paths, base))


def score_voice(base, mel_fn: Callable[[str], torch.Tensor],
                references: dict[str, tuple[Path, str]], out_dir: str | Path,
                recognizer=None, vocoder: str = "auto",
                target: torch.Tensor | None = None, write_report: bool = False,
                recognize: set[str] | None = None, condition=None) -> dict:
    """``references``: stem -> (audio path, text). Writes ``out_dir/hyp/<stem>.wav`` and
    ``out_dir/ref/<stem>`` links; returns the summary plus ``speaker_similarity`` (of the mels
    as predicted; the audio is rendered as synthesis renders it: post-filtered or sharpened
    where the base does that before ``vocoder``).
    With a ``recognizer``, the stems in ``recognize`` (default: all) are also transcribed,
    synthesized and real audio alike (``pooled_wer``, ``reference_pooled_wer``).
    ``condition``: the voice ``mel_fn`` speaks in, where it carries its own post-filter
    values (SpeakerCondition.postfilter)."""
    out_dir = Path(out_dir)
    hyp_dir, ref_dir = out_dir / "hyp", out_dir / "ref"
    hyp_dir.mkdir(parents=True, exist_ok=True)
    ref_dir.mkdir(parents=True, exist_ok=True)
    render = base.vocoder(vocoder)
    shape = base.mel_filter(vocoder, condition)  # what synthesis does before this renderer
    mels, waves = [], []
    for stem, (path, text) in references.items():
        mel = mel_fn(text)
        mels.append(mel)
        with torch.no_grad():
            waves.append(render(shape(mel)).numpy())
        save_audio(hyp_dir / f"{stem}.wav", waves[-1], base.sample_rate)
        link = ref_dir / f"{stem}{Path(path).suffix}"
        if not link.exists():
            link.symlink_to(Path(path).resolve())
    transcripts = {s: t for s, (_, t) in references.items()
                   if recognize is None or s in recognize}
    report = evaluate_dirs(ref_dir, hyp_dir, transcripts, recognizer,
                           out_dir=out_dir / "report" if write_report else None)
    summary = report.summary()
    if target is None:
        target = target_embedding(base, [p for p, _ in references.values()])
    summary["speaker_similarity"] = (speaker_similarity(base, mels, target)
                                     if target is not None else None)
    summary.update(mean_mos(waves, base.sample_rate))
    return summary


def mean_mos(waves: list[np.ndarray], sample_rate_hz: int) -> dict:
    """Mean predicted MOS (``distillmos``, ``dnsmos_ovrl``) of ``waves``; None for each when
    the ``eval`` extra (the judges) is not installed."""
    from adavoice.evaluate.mos import MissingExtraError, predicted_mos

    try:
        scores = [predicted_mos(w, sample_rate_hz) for w in waves]
    except MissingExtraError:
        return {"distillmos": None, "dnsmos_ovrl": None}
    return {key: float(np.mean([s[key] for s in scores])) for key in ("distillmos",
                                                                      "dnsmos_ovrl")}
