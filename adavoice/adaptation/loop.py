"""The adaptation loop: a frozen base, ~20 clips of a new voice, one adapter trained.

With transcripts it follows AdaSpeech (teacher-forced text-to-mel pass, mel + duration + pitch +
energy losses; the speaker vector reaches the variance predictors too). Without them it follows
AdaSpeech 2: the shipped mel encoder turns each clip into decoder input, the decoder (with the
adapter's CLN) reconstructs the clip, and no text is ever read.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adavoice.adaptation.clips import AdaptationClip, load_clips
from adavoice.adaptation.config import DEFAULT_MAX_UTTERANCES, AdapterConfig
from adavoice.adaptation.kinds import Adapter, adapter_for
from adavoice.config import SynthesisConfig
from adavoice.errors import (
    DatasetError,
    EmptyTextError,
    EmptyTranscriptError,
    UnknownSymbolError,
)
from adavoice.models.speech_encoder import voice_frames
from adavoice.train.acoustic_data import AcousticItem, collate_acoustic
from adavoice.train.acoustic_losses import LossWeights, acoustic_losses, masked_l1

# The aligner and phoneme predictor are frozen: their losses cannot move an adapter.
ADAPTATION_WEIGHTS = LossWeights(forward_sum=0.0, binarization=0.0, phoneme_condition=0.0)


@torch.no_grad()
def initial_vectors(base, clips: list[AdaptationClip], cfg: AdapterConfig):
    """(speaker_vector, utterance_vector, info) for a new voice from its clips (audio only)."""
    model = base.model
    mels = [c.mel for c in clips]
    if model.utterance_encoder is not None:
        vectors = [model.utterance_encoder(m.unsqueeze(0),
                                           torch.ones(1, m.shape[-1], dtype=torch.bool))[0]
                   for m in mels]
        utterance_vector = torch.stack(vectors).mean(0)
    else:
        utterance_vector = torch.zeros(model.cfg.hidden)
    table = model.speaker_embedding.weight.detach()
    similarity = None if cfg.init == "mean" else base.seen_speaker_similarities(mels)
    if similarity is None:
        return table.mean(0), utterance_vector, {"init": "mean"}
    best = int(similarity.argmax())
    info = {"init": cfg.init, "nearest_speaker": base.speakers[best],
            "nearest_similarity": round(float(similarity[best]), 4)}
    if cfg.init == "nearest":
        return table[best].clone(), utterance_vector, info
    weights = torch.softmax(similarity / cfg.init_temperature, dim=0)
    return weights @ table, utterance_vector, info


def _token_ids(processor, clips: list[AdaptationClip]):
    """The clips' transcripts processed in one call; a transcript with nothing to say fails
    (before the first step) naming its clip."""
    try:
        return processor.process_many([c.text for c in clips])
    except (EmptyTextError, UnknownSymbolError):
        for clip in clips:
            try:
                processor.process(clip.text)
            except (EmptyTextError, UnknownSymbolError) as exc:
                raise type(exc)(f"clip {clip.id}: {exc.message}",
                                fix="correct its transcript, or adapt with --untranscribed"
                                ) from exc
        raise


class _Task:
    """Precollated batches and the loss of one mode (transcribed or untranscribed)."""

    def __init__(self, base, clips: list[AdaptationClip], transcribed: bool, batch_size: int,
                 predicted_condition_share: float = 0.0, predicted_variance: bool = False,
                 voice_utterance: bool = False):
        self.base, self.transcribed = base, transcribed
        self.voice_utterance = voice_utterance
        self.predicted_condition_share = predicted_condition_share
        self.predicted_variance = predicted_variance
        ordered = sorted(clips, key=lambda c: c.mel.shape[-1])
        groups = [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]
        self.batches = [self._collate(group) for group in groups]
        self.frames = self.durations = None
        if transcribed:  # the aligner is frozen: its paths are fixed per batch
            with torch.no_grad():
                self.durations = [base.model.align(b.tokens, b.text_mask, b.mel, b.frame_mask,
                                                   b.log_prior)[1].sum(1).long()
                                  for b in self.batches]
        else:
            self.encoder = encoder = base.speech_encoder()
            with torch.no_grad():  # the mel encoder is frozen: its output is fixed per batch
                self.frames = [encoder(b.mel, b.frame_mask) for b in self.batches]

    def _collate(self, clips):
        ids = _token_ids(self.base.processor, clips) if self.transcribed else None
        items = [AcousticItem(ids=(np.asarray(ids[i].ids, dtype=np.int64) if ids
                                   else np.zeros(1, dtype=np.int64)),
                              speaker=0, mel=c.mel.numpy(), log_f0=c.log_f0.numpy(),
                              log_energy=c.log_energy.numpy(), utterance_id=c.id)
                 for i, c in enumerate(clips)]
        return collate_acoustic(items)

    def losses(self, adapter: Adapter, index: int) -> dict[str, torch.Tensor]:
        batch, model = self.batches[index], self.base.model
        voice = adapter.condition()
        if self.transcribed:
            out = model(batch.tokens, batch.text_mask, batch.speakers, batch.mel,
                        batch.frame_mask, batch.log_f0, batch.log_energy, batch.log_prior,
                        voice=voice, durations=self.durations[index],
                        predicted_condition_share=(self.predicted_condition_share
                                                   if adapter.training else 0.0),
                        predicted_variance=self.predicted_variance,
                        voice_utterance=self.voice_utterance)
            losses = acoustic_losses(out, batch, 0, ADAPTATION_WEIGHTS)
            keep = ("loss", "mel_loss", "duration_loss", "pitch_loss", "energy_loss")
            return {k: losses[k] for k in keep}
        rows = batch.mel.shape[0]
        speaker = voice.speaker_vector.view(1, -1).expand(rows, -1)
        utterance = voice.utterance_vector.view(1, -1).expand(rows, -1)
        # a speaker-free encoder's frames get the voice's speaker terms, as text would
        frames = voice_frames(self.encoder, model, self.frames[index], batch.frame_mask,
                              speaker, utterance)
        mel = model.decode(frames, batch.frame_mask, speaker, model.condition_norm_params(voice),
                           voice.decoder)
        loss = masked_l1(mel, batch.mel, batch.frame_mask)
        return {"loss": loss, "mel_loss": loss}

    @torch.no_grad()
    def decoded(self, voice, predicted_variance: bool = False) -> list[dict[str, torch.Tensor]]:
        """Per clip: its recording's mel and the base's mel of it in ``voice`` (a
        SpeakerCondition), frame-aligned (the aligner's durations with transcripts, the mel
        encoder's frames without), each (n_mels, T)."""
        model, pairs = self.base.model, []
        for index, batch in enumerate(self.batches):
            if self.transcribed:
                mel = model(batch.tokens, batch.text_mask, batch.speakers, batch.mel,
                            batch.frame_mask, batch.log_f0, batch.log_energy, batch.log_prior,
                            voice=voice, durations=self.durations[index],
                            predicted_variance=predicted_variance,
                            voice_utterance=self.voice_utterance).mel
            else:
                rows = batch.mel.shape[0]
                speaker = voice.speaker_vector.view(1, -1).expand(rows, -1)
                utterance = voice.utterance_vector.view(1, -1).expand(rows, -1)
                frames = voice_frames(self.encoder, model, self.frames[index], batch.frame_mask,
                                      speaker, utterance)
                mel = model.decode(frames, batch.frame_mask, speaker,
                                   model.condition_norm_params(voice), voice.decoder)
            for row in range(batch.mel.shape[0]):
                length = int(batch.frame_mask[row].sum())
                pairs.append({"recording": batch.mel[row, :, :length],
                              "mel": mel[row, :, :length]})
        return pairs

    @torch.no_grad()
    def mean_mel_loss(self, adapter: Adapter) -> float:
        was_training = adapter.training
        adapter.eval()
        total = sum(float(self.losses(adapter, i)["mel_loss"]) for i in range(len(self.batches)))
        adapter.train(was_training)
        return total / len(self.batches)


def split_clips(clips: list[AdaptationClip], cfg: AdapterConfig):
    """Hold out the last ``validation_clips`` when enough clips remain to train on."""
    held = cfg.validation_clips if len(clips) >= 3 * max(1, cfg.validation_clips) else 0
    return clips[:len(clips) - held], clips[len(clips) - held:]


@dataclass
class AdaptationResult:
    """What the loop made: the voice's stored tensors and its bundle config (without the
    artifact fields the bundle writer adds)."""

    tensors: dict[str, torch.Tensor]
    config: dict


def adapt_base(base, data, cfg: AdapterConfig, untranscribed: bool = False,
               max_utterances: int = DEFAULT_MAX_UTTERANCES, speaker: str | None = None,
               progress: bool = True, name: str | None = None) -> AdaptationResult:
    """Adapt ``base`` (a loaded BaseModel) to the voice in ``data`` with the settings ``cfg``.

    ``data``: a manifest folder or a plain audio folder (optional ``metadata.csv``). Clips
    with no transcripts at all, or ``untranscribed=True``, select AdaSpeech 2 (no text read);
    some clips with transcripts and some without is an EmptyTranscriptError."""
    started = time.perf_counter()
    clips = load_clips(data, base.cfg.mel, max_utterances, untranscribed, speaker)
    missing = [c.id for c in clips if not c.text]
    if not untranscribed and missing and len(missing) < len(clips):
        raise EmptyTranscriptError(
            f"{len(missing)} of {len(clips)} clips have no transcript "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})", path=data,
            fix="add their transcripts, or pass --untranscribed to adapt from audio alone")
    transcribed = not untranscribed and not missing
    train_clips, valid_clips = split_clips(clips, cfg)
    with torch.random.fork_rng():  # seeded here without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        speaker_vector, utterance_vector, init_info = initial_vectors(base, clips, cfg)
        adapter = adapter_for(base.model, cfg, speaker_vector, utterance_vector,
                              tie_text_vector=transcribed)
        history = _optimise(base, adapter, cfg, train_clips, valid_clips, transcribed, progress)
        tensors = adapter.export()
        postfilter = _voice_postfilter(base, adapter, cfg, train_clips, valid_clips,
                                       transcribed, progress)
        if "tensors" in postfilter:
            tensors.update(postfilter.pop("tensors"))
    wall_s = time.perf_counter() - started
    config = {
        "name": name or Path(data).name,
        "base": {"name": base.name, "content_hash": base.content_hash},
        "language": base.cfg.language, "sample_rate_hz": base.sample_rate,
        "defaults": SynthesisConfig.neutral().to_dict(),
        "stored_parameters": int(sum(t.numel() for t in tensors.values())),
        "provenance": {
            "clips": len(clips), "train_clips": len(train_clips),
            "validation_clips": len(valid_clips),
            "minutes_of_audio": round(sum(c.duration_s for c in clips) / 60, 3),
            "transcribed": transcribed, "steps": history["steps"],
            "best_step": history["best_step"], "wall_s": round(wall_s, 1), **init_info},
        "metrics": {"initial_train_mel_loss": history["initial_train_mel_loss"],
                    "train_mel_loss": history["train_mel_loss"],
                    "validation_mel_loss": history["best_validation"]},
        "adapter": cfg.to_dict(),
        "postfilter": postfilter,
    }
    return AdaptationResult(tensors, config)


def _voice_postfilter(base, adapter, cfg, train_clips, valid_clips, transcribed,
                      progress) -> dict:
    """The voice's own post-filter values (``tensors``) and their record, or why it has none
    (``skipped``)."""
    from adavoice.adaptation.postfilter import skip_reason, tune_voice_postfilter

    reason = skip_reason(base, cfg)
    if reason is not None:
        return {"skipped": reason}
    previous = base.precision
    base.set_precision("float32")
    try:
        with torch.no_grad():
            condition = adapter.condition()
        train = _Task(base, train_clips, transcribed, cfg.batch_size,
                      voice_utterance=cfg.train_utterance_vector)
        valid = (_Task(base, valid_clips, transcribed, cfg.batch_size,
                       voice_utterance=cfg.train_utterance_vector) if valid_clips else None)
        tensors, record = tune_voice_postfilter(base, condition, train, valid, cfg, progress)
    finally:
        base.set_precision(previous)
    return {"tensors": tensors, **record}


def _optimise(base, adapter, cfg, train_clips, valid_clips, transcribed, progress) -> dict:
    """Adapt in float32 throughout: the held-out loss that picks the kept step must not depend
    on whether this CPU runs the decoder in bfloat16 at inference."""
    previous = base.precision
    base.set_precision("float32")
    try:
        return _optimise_float32(base, adapter, cfg, train_clips, valid_clips, transcribed,
                                 progress)
    finally:
        base.set_precision(previous)


def _optimise_float32(base, adapter, cfg, train_clips, valid_clips, transcribed,
                      progress) -> dict:
    from adavoice.progress import progress_bar

    if not train_clips:
        raise DatasetError("no clips left to adapt on")
    model = base.model
    frozen, was_training = [p.requires_grad for p in model.parameters()], model.training
    model.eval().requires_grad_(False)
    bar = None
    try:  # from here on, the base gets its training flags back whatever happens
        task = _Task(base, train_clips, transcribed, cfg.batch_size, cfg.predicted_condition_share,
                     voice_utterance=cfg.train_utterance_vector)
        valid = (_Task(base, valid_clips, transcribed, cfg.batch_size,
                       predicted_variance=cfg.validation == "synthesis",
                       voice_utterance=cfg.train_utterance_vector) if valid_clips else None)
        learning_rate = cfg.learning_rate * (1.0 if transcribed else cfg.untranscribed_lr_scale)
        optimizer = torch.optim.Adam([p for p in adapter.parameters() if p.requires_grad],
                                     lr=learning_rate)
        rng = random.Random(cfg.seed)
        initial = task.mean_mel_loss(adapter)
        best = (valid.mean_mel_loss(adapter) if valid else float("inf"), 0,
                copy.deepcopy(adapter.state_dict()))
        waited, step = 0, 0
        adapter.train()
        limit = cfg.step_limit(transcribed)
        bar = progress_bar(limit, "adapt", disable=not progress)
        while step < limit:
            order = list(range(len(task.batches)))
            rng.shuffle(order)
            for index in order:
                losses = task.losses(adapter, index)
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                optimizer.step()
                step += 1
                bar.update(1)
                bar.set_postfix(mel=f"{float(losses['mel_loss'].detach()):.3f}")
                if valid is not None and step % cfg.validate_every == 0:
                    score = valid.mean_mel_loss(adapter)
                    if score < best[0]:
                        best, waited = (score, step, copy.deepcopy(adapter.state_dict())), 0
                    else:
                        waited += 1
                if step >= limit or waited >= cfg.patience:
                    break
            if waited >= cfg.patience:
                break
    finally:
        if bar is not None:
            bar.close()
        for parameter, flag in zip(model.parameters(), frozen, strict=True):
            parameter.requires_grad_(flag)
        model.train(was_training)
    if valid is not None:
        if step % cfg.validate_every:  # the last steps have not been validated yet
            score = valid.mean_mel_loss(adapter)
            if score < best[0]:
                best = (score, step, copy.deepcopy(adapter.state_dict()))
        adapter.load_state_dict(best[2])
    adapter.eval()
    return {"steps": step, "best_step": best[1] if valid is not None else step,
            "initial_train_mel_loss": round(initial, 4),
            "train_mel_loss": round(task.mean_mel_loss(adapter), 4),
            "best_validation": round(best[0], 4) if valid is not None else None}
