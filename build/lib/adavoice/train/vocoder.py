"""`adavoice train vocoder`: the iSTFT-head vocoder on random audio segments of a corpus.

Losses: multi-resolution STFT (spectral convergence + log-magnitude L1 at three resolutions) and
mel L1 through the shared MelFrontend; with ``phase_weight`` > 0, direct supervision of the
head's phase against the real STFT's (anti-wrapped instantaneous phase, group delay and
instantaneous frequency errors, the three phase losses of APNet, Ai & Ling 2023), which the
magnitude losses see only through overlap-add; ``magnitude_weight`` > 0 does the same for the
head's magnitude. On the CPU (BENCHMARKS.md, seventh session) the uniform phase losses with
the ``vector`` phase head lifted unseen-voice PESQ-WB from 2.07 to 2.28 at 16,000 steps, so
``train_vocoder`` uses them by default (weight 1); magnitude weighting and the head-magnitude
loss lowered PESQ and stay off. ``adversarial=True`` adds the adversarial
phase of DESIGN §5: multi-period and multi-resolution discriminators (:mod:`adavoice.models.
discriminators`) trained in turn with the vocoder, least-squares GAN + feature matching, the
reconstruction loss kept (times ``reconstruction_weight``). It is meant to follow a
reconstruction run (``--init``); the discriminators live only in the run's checkpoint.
``--init`` starts from a trained vocoder (fine-tuning on new data). Same loop as every other
model: curves, atomic resumable checkpoints, ``--device``, torchrun.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adavoice.audio import MelFrontend, load_audio
from adavoice.config import MelConfig
from adavoice.data.manifest import Manifest
from adavoice.errors import ConfigError, DatasetError
from adavoice.models.vocoder import Vocoder, VocoderConfig
from adavoice.train.loop import TrainConfig, Trainer, recent_mean
from adavoice.train.settings import VOCODER_RUN

STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop)


def stft_magnitude(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=wave.device)
    spec = torch.stft(wave, n_fft, hop, window=window, return_complex=True)
    return spec.abs().clamp(min=1e-7)


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + L1 of log magnitudes. (B, N) waves."""
    total = pred.new_zeros(())
    for n_fft, hop in STFT_RESOLUTIONS:
        p, t = stft_magnitude(pred, n_fft, hop), stft_magnitude(target, n_fft, hop)
        convergence = torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp(min=1e-7)
        total = total + convergence + (torch.log(p) - torch.log(t)).abs().mean()
    return total / len(STFT_RESOLUTIONS)


def wrapped_distance(x: torch.Tensor) -> torch.Tensor:
    """|x| after wrapping x into [-pi, pi]: the distance between two angles x apart."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def phase_losses(pred: torch.Tensor, target: torch.Tensor,
                 weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Phase errors, (B, F, T) angles each, every term a mean wrapped distance:
    ``instantaneous`` (the phases), ``group_delay`` (their differences across frequency) and
    ``frequency`` (their advance from frame to frame). The last two do not see a constant
    offset, so they hold even where the absolute phase is ambiguous.

    ``weight`` (B, F, T) >= 0 makes each a weighted mean (a difference weighs the geometric
    mean of its two bins' weights): with the target's magnitude, the bins that carry the sound
    count and the phase of near-silent bins, which nothing can predict, hardly does."""

    def mean(error, w):
        return error.mean() if w is None else (error * w).sum() / w.sum().clamp(min=1e-12)

    def pair(w, dim):
        if w is None:
            return None
        n = w.shape[dim]
        return torch.sqrt(w.narrow(dim, 1, n - 1) * w.narrow(dim, 0, n - 1))

    return {
        "instantaneous": mean(wrapped_distance(pred - target), weight),
        "group_delay": mean(wrapped_distance(pred.diff(dim=1) - target.diff(dim=1)),
                            pair(weight, 1)),
        "frequency": mean(wrapped_distance(pred.diff(dim=2) - target.diff(dim=2)),
                          pair(weight, 2)),
    }


class VocoderTask(nn.Module):
    """Vocoder + the mel front end used for the mel loss (not trained).

    ``phase_weight`` > 0 adds that weight times the sum of :func:`phase_losses` of the head's
    phase against the STFT of the real wave (the mel front end's own, whose n_fft, hop, window
    and frame centres the head shares),
    every bin alike (``uniform``) or weighted by the real magnitude (``magnitude``).
    ``magnitude_weight`` > 0 adds that weight times the L1 between the head's log-magnitude and
    the real STFT's, which the multi-resolution loss sees only through overlap-add."""

    def __init__(self, cfg: VocoderConfig, mel: MelConfig, phase_weight: float = 0.0,
                 phase_weighting: str = "uniform", magnitude_weight: float = 0.0):
        super().__init__()
        if phase_weighting not in ("uniform", "magnitude"):
            raise ConfigError(f"unknown phase weighting {phase_weighting!r}",
                              fix="uniform | magnitude")
        if phase_weight < 0 or magnitude_weight < 0:
            raise ConfigError("loss weights cannot be negative", fix="0 turns a term off")
        if (cfg.n_fft, cfg.hop_length, cfg.n_fft) != (mel.n_fft, mel.hop_length, mel.win_length):
            raise ConfigError("the vocoder's STFT is not the mel front end's",
                              fix="make the VocoderConfig with VocoderConfig.for_mel")
        self.vocoder = Vocoder(cfg)
        self.frontend = MelFrontend(mel)
        self.phase_weight, self.phase_weighting = phase_weight, phase_weighting
        self.magnitude_weight = magnitude_weight

    def forward(self, wave: torch.Tensor, reconstruction_weight: float = 1.0
                ) -> dict[str, torch.Tensor]:
        """Losses of one batch of waves (B, samples); ``_real``/``_fake`` carry the target and
        generated audio for a discriminator."""
        real = self.frontend.spectrum(wave)  # the head's frames too: one STFT for both
        mel = self.frontend.from_magnitude(real.abs())
        magnitude, cos, sin = self.vocoder.components(mel)
        pred = self.vocoder.istft.from_cartesian(magnitude * cos, magnitude * sin)
        target = wave[:, :pred.shape[-1]]
        stft = multi_resolution_stft_loss(pred, target)
        mel_loss = (self.frontend(pred) - mel).abs().mean()
        total = stft + mel_loss
        out = {"stft_loss": stft.detach(), "mel_loss": mel_loss.detach()}
        if self.magnitude_weight > 0:
            head = (torch.log(magnitude.float().clamp(min=1e-5))
                    - torch.log(real.abs().clamp(min=1e-5))).abs().mean()
            total = total + self.magnitude_weight * head
            out["head_magnitude_loss"] = head.detach()
        if self.phase_weight > 0:
            weight = None
            if self.phase_weighting == "magnitude":  # each utterance's bins, mean weight 1
                weight = real.abs()
                weight = weight / weight.mean(dim=(1, 2), keepdim=True).clamp(min=1e-8)
            terms = phase_losses(torch.atan2(sin, cos).float(), torch.angle(real), weight)
            phase_loss = sum(terms.values())
            total = total + self.phase_weight * phase_loss
            out["phase_loss"] = phase_loss.detach()
        return {"loss": reconstruction_weight * total, **out, "_real": target, "_fake": pred}


def segments(rows, manifest, sample_rate: int, samples: int, rng: random.Random) -> np.ndarray:
    """One random ``samples``-long window per row (zero-padded when the clip is shorter)."""
    out = np.zeros((len(rows), samples), dtype=np.float32)
    for i, row in enumerate(rows):
        wave = load_audio(manifest.audio_path(row), sample_rate)
        if len(wave) > samples:
            start = rng.randrange(len(wave) - samples)
            wave = wave[start:start + samples]
        out[i, :len(wave)] = wave
    return out


class _SegmentBatches:
    """Shuffled batches of random audio segments, the same for a seed wherever a run resumes."""

    def __init__(self, rows, manifest, batch_size: int, samples: int, seed: int,
                 sample_rate_hz: int, device: torch.device):
        self.rows, self.manifest, self.batch_size = rows, manifest, batch_size
        self.samples, self.seed, self.rate, self.device = samples, seed, sample_rate_hz, device

    def make(self, epoch: int) -> list:
        order = list(range(len(self.rows)))
        random.Random(self.seed * 7919 + epoch).shuffle(order)
        return [(epoch, i, order[i:i + self.batch_size])
                for i in range(0, len(order), self.batch_size)]

    def load(self, item) -> torch.Tensor:
        epoch, position, indices = item
        rng = random.Random((self.seed, epoch, position).__hash__() & 0xFFFFFFFF)
        waves = segments([self.rows[i] for i in indices], self.manifest, self.rate,
                         self.samples, rng)
        return torch.from_numpy(waves).to(self.device)


def train_vocoder(data: str | Path, out: str | Path, preset: str = VOCODER_RUN.preset,
                  steps: int = VOCODER_RUN.steps, batch_size: int = VOCODER_RUN.batch_size,
                  segment_frames: int = VOCODER_RUN.segment_frames, device: str = "cpu",
                  resume: bool = False, init: str | Path | None = None,
                  train_cfg: TrainConfig | None = None, exclude_speakers: tuple = (),
                  progress: bool = True, adversarial: bool = False,
                  critic_preset: str | None = None,
                  critic_warmup: int = VOCODER_RUN.critic_warmup,
                  reconstruction_weight: float = 45.0, feature_weight: float = 2.0,
                  phase_weight: float = VOCODER_RUN.phase_weight, phase_head: str | None = None,
                  phase_weighting: str = VOCODER_RUN.phase_weighting,
                  magnitude_weight: float = VOCODER_RUN.magnitude_weight) -> Path:
    """Train on the manifest's train split (minus ``exclude_speakers``); write the release.

    ``adversarial``: add the discriminators (``critic_preset``, by default the preset the
    vocoder was made with). For the first ``critic_warmup`` steps they learn while the vocoder
    trains on reconstruction alone; then the vocoder's loss is ``reconstruction_weight`` x
    (STFT + mel, + the spectrum terms below when on) + adversarial + ``feature_weight`` x
    feature matching (weights after HiFi-GAN's 45 and 2, though its 45 multiplies the mel loss
    alone).

    ``phase_weight``, ``phase_weighting``, ``magnitude_weight``: direct supervision of the
    head's spectrum (:class:`VocoderTask`) beside STFT + mel.
    ``phase_head``: ``angle`` or ``vector`` (:class:`VocoderConfig`); by default the preset's,
    or the ``init`` vocoder's (which cannot change it)."""
    out, data = Path(out), Path(data)
    manifest = Manifest.load(data)
    rows = [u for u in (list(manifest.split("train")) or list(manifest))
            if u.speaker not in exclude_speakers]
    if not rows:
        raise DatasetError("no training audio", path=data)
    mel_cfg = MelConfig()
    cfg, initial = _vocoder_config(preset, mel_cfg, phase_head, init)
    # the adversarial phase fine-tunes at HiFi-GAN's rate; from scratch or alone, 5e-4
    tcfg = train_cfg or TrainConfig(steps=steps, learning_rate=2e-4 if adversarial else 5e-4,
                                    warmup_steps=min(500, steps // 10 + 1),
                                    validate_every=10**9)
    torch.manual_seed(tcfg.seed)
    task = VocoderTask(cfg, mel_cfg, phase_weight, phase_weighting, magnitude_weight)
    critic = None
    if adversarial:  # by default the discriminators are as large as the vocoder's preset
        critic_preset = critic_preset or next(
            (name for name in ("tiny", "small")
             if VocoderConfig.for_mel(name, mel_cfg, phase_head=cfg.phase_head) == cfg),
            preset)
        critic = _critic(critic_preset, feature_weight, tcfg.learning_rate, critic_warmup)
    else:
        reconstruction_weight = 1.0
    if initial is not None:
        task.vocoder.load_state_dict(initial.state_dict())
    samples = segment_frames * mel_cfg.hop_length
    dev = torch.device(device)

    batches = _SegmentBatches(rows, manifest, batch_size, samples, tcfg.seed,
                              mel_cfg.sample_rate_hz, dev)
    trainer = Trainer(task, lambda net, batch, step: net(batch, reconstruction_weight),
                      batches.make, batches.load, tcfg, out, device,
                      params=list(task.vocoder.parameters()), critic=critic)
    history = trainer.fit(resume, progress)
    if trainer.rank == 0:
        training = {"data": str(data), "steps": trainer.step, "utterances": len(rows),
                    "excluded_speakers": list(exclude_speakers),
                    "init": str(init) if init else None,
                    "last_session_wall_s": trainer.last_session_wall_s,
                    **_final_losses(history, phase_weight, magnitude_weight),
                    "phase_weight": phase_weight, "phase_weighting": phase_weighting,
                    "magnitude_weight": magnitude_weight}
        if adversarial:
            training["adversarial"] = {
                "critic": critic_preset, "critic_warmup": critic_warmup,
                "reconstruction_weight": reconstruction_weight,
                "feature_weight": feature_weight,
                **{f"final_{k}": recent_mean(history, k)
                   for k in ("adversarial_loss", "feature_loss", "critic_loss")}}
        trainer.model.vocoder.cpu().eval().save(out, mel_cfg, training)
    return out


def _vocoder_config(preset: str, mel_cfg: MelConfig, phase_head: str | None,
                    init: str | Path | None) -> tuple[VocoderConfig, Vocoder | None]:
    """(config, the ``init`` vocoder or None): an ``init`` vocoder keeps its own config."""
    head = {} if phase_head is None else {"phase_head": phase_head}
    if init is None:
        return VocoderConfig.for_mel(preset, mel_cfg, **head), None
    initial, init_mel = Vocoder.from_dir(init)
    if init_mel != mel_cfg:
        raise ConfigError("the --init vocoder was trained on another mel front end",
                          fix="fine-tune a vocoder made with the default MelConfig")
    if phase_head is not None and phase_head != initial.cfg.phase_head:
        raise ConfigError(f"the --init vocoder has a {initial.cfg.phase_head!r} phase head",
                          fix="leave --phase-head out when fine-tuning")
    return initial.cfg, initial


def _critic(preset: str, feature_weight: float, learning_rate: float, warmup_steps: int):
    from adavoice.models.discriminators import VocoderCritic, critic_loss, generator_terms
    from adavoice.train.critic import Critic

    return Critic(
        VocoderCritic.for_preset(preset),
        loss_fn=lambda net, out: critic_loss(net, out["_real"], out["_fake"]),
        model_terms=lambda net, out: generator_terms(net, out["_real"], out["_fake"]),
        weights={"adversarial_loss": 1.0, "feature_loss": feature_weight},
        learning_rate=learning_rate, warmup_steps=warmup_steps)


def _final_losses(history: list[dict], phase_weight: float, magnitude_weight: float) -> dict:
    losses = {"final_stft_loss": recent_mean(history, "stft_loss"),
              "final_mel_loss": recent_mean(history, "mel_loss")}
    if phase_weight > 0:
        losses["final_phase_loss"] = recent_mean(history, "phase_loss")
    if magnitude_weight > 0:
        losses["final_head_magnitude_loss"] = recent_mean(history, "head_magnitude_loss")
    return losses
