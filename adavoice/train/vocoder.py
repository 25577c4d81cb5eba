"""`adavoice train vocoder`: the iSTFT-head vocoder on random audio segments of a corpus.

Losses: multi-resolution STFT (spectral convergence + log-magnitude L1 at three resolutions) and
mel L1 through the shared MelFrontend. ``adversarial=True`` adds the adversarial phase of
DESIGN §5: multi-period and multi-resolution discriminators (:mod:`adavoice.models.
discriminators`) trained in turn with the vocoder, least-squares GAN + feature matching, the
reconstruction loss kept (times ``reconstruction_weight``). It is meant to follow a
reconstruction run (``--init``); the discriminators live only in the run's checkpoint.
``--init`` starts from a trained vocoder (fine-tuning on new data). Same loop as every other
model: curves, atomic resumable checkpoints, ``--device``, torchrun.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adavoice.audio import MelFrontend, load_audio
from adavoice.config import MelConfig
from adavoice.data.manifest import Manifest
from adavoice.errors import DatasetError
from adavoice.models.vocoder import Vocoder, VocoderConfig
from adavoice.train.loop import TrainConfig, Trainer, recent_mean

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


class VocoderTask(nn.Module):
    """Vocoder + the mel front end used for the mel loss (not trained)."""

    def __init__(self, cfg: VocoderConfig, mel: MelConfig):
        super().__init__()
        self.vocoder = Vocoder(cfg)
        self.frontend = MelFrontend(mel)

    def forward(self, wave: torch.Tensor, reconstruction_weight: float = 1.0
                ) -> dict[str, torch.Tensor]:
        """Losses of one batch of waves (B, samples); ``_real``/``_fake`` carry the target and
        generated audio for a discriminator."""
        mel = self.frontend(wave)
        pred = self.vocoder(mel)
        target = wave[:, :pred.shape[-1]]
        stft = multi_resolution_stft_loss(pred, target)
        mel_loss = (self.frontend(pred) - mel).abs().mean()
        return {"loss": reconstruction_weight * (stft + mel_loss), "stft_loss": stft.detach(),
                "mel_loss": mel_loss.detach(), "_real": target, "_fake": pred}


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


def train_vocoder(data: str | Path, out: str | Path, preset: str = "small", steps: int = 20000,
                  batch_size: int = 16, segment_frames: int = 32, device: str = "cpu",
                  resume: bool = False, init: str | Path | None = None,
                  train_cfg: TrainConfig | None = None, exclude_speakers: tuple = (),
                  progress: bool = True, adversarial: bool = False,
                  critic_preset: str | None = None, critic_warmup: int = 200,
                  reconstruction_weight: float = 45.0, feature_weight: float = 2.0) -> Path:
    """Train on the manifest's train split (minus ``exclude_speakers``); write the release.

    ``adversarial``: add the discriminators (``critic_preset``, by default the preset the
    vocoder was made with). For the first ``critic_warmup`` steps they learn while the vocoder
    trains on reconstruction alone; then the vocoder's loss is ``reconstruction_weight`` x
    (STFT + mel) + adversarial + ``feature_weight`` x feature matching (weights after
    HiFi-GAN's 45 and 2, though its 45 multiplies the mel loss alone)."""
    out, data = Path(out), Path(data)
    manifest = Manifest.load(data)
    rows = [u for u in (list(manifest.split("train")) or list(manifest))
            if u.speaker not in exclude_speakers]
    if not rows:
        raise DatasetError("no training audio", path=data)
    mel_cfg = MelConfig()
    cfg = VocoderConfig.for_mel(preset, mel_cfg)
    if init is not None:
        initial, init_mel = Vocoder.from_dir(init)
        if init_mel != mel_cfg:
            from adavoice.errors import ConfigError

            raise ConfigError("the --init vocoder was trained on another mel front end",
                              fix="fine-tune a vocoder made with the default MelConfig")
        cfg = initial.cfg
    # the adversarial phase fine-tunes at HiFi-GAN's rate; from scratch or alone, 5e-4
    tcfg = train_cfg or TrainConfig(steps=steps, learning_rate=2e-4 if adversarial else 5e-4,
                                    warmup_steps=min(500, steps // 10 + 1),
                                    validate_every=10**9)
    torch.manual_seed(tcfg.seed)
    task = VocoderTask(cfg, mel_cfg)
    critic = None
    if adversarial:  # by default the discriminators are as large as the vocoder's preset
        critic_preset = critic_preset or next(
            (name for name in ("tiny", "small") if VocoderConfig.for_mel(name, mel_cfg) == cfg),
            preset)
        from adavoice.models.discriminators import VocoderCritic, critic_loss, generator_terms
        from adavoice.train.loop import Critic

        critic = Critic(
            VocoderCritic.for_preset(critic_preset),
            loss_fn=lambda net, out: critic_loss(net, out["_real"], out["_fake"]),
            model_terms=lambda net, out: generator_terms(net, out["_real"], out["_fake"]),
            weights={"adversarial_loss": 1.0, "feature_loss": feature_weight},
            learning_rate=tcfg.learning_rate, warmup_steps=critic_warmup)
    else:
        reconstruction_weight = 1.0
    if init is not None:
        task.vocoder.load_state_dict(initial.state_dict())
    samples = segment_frames * mel_cfg.hop_length
    dev = torch.device(device)

    def make_batches(epoch):
        order = list(range(len(rows)))
        random.Random(tcfg.seed * 7919 + epoch).shuffle(order)
        return [(epoch, i, order[i:i + batch_size])
                for i in range(0, len(order), batch_size)]

    def load_batch(item):
        epoch, position, indices = item
        rng = random.Random((tcfg.seed, epoch, position).__hash__() & 0xFFFFFFFF)
        waves = segments([rows[i] for i in indices], manifest, mel_cfg.sample_rate_hz, samples,
                         rng)
        return torch.from_numpy(waves).to(dev)

    trainer = Trainer(task, lambda net, batch, step: net(batch, reconstruction_weight),
                      make_batches, load_batch, tcfg, out, device,
                      params=list(task.vocoder.parameters()), critic=critic)
    history = trainer.fit(resume, progress)
    if trainer.rank == 0:
        training = {"data": str(data), "steps": trainer.step, "utterances": len(rows),
                    "excluded_speakers": list(exclude_speakers),
                    "init": str(init) if init else None,
                    "last_session_wall_s": trainer.last_session_wall_s,
                    "final_stft_loss": recent_mean(history, "stft_loss"),
                    "final_mel_loss": recent_mean(history, "mel_loss")}
        if adversarial:
            training["adversarial"] = {
                "critic": critic_preset, "critic_warmup": critic_warmup,
                "reconstruction_weight": reconstruction_weight,
                "feature_weight": feature_weight,
                "final_adversarial_loss": recent_mean(history, "adversarial_loss"),
                "final_feature_loss": recent_mean(history, "feature_loss"),
                "final_critic_loss": recent_mean(history, "critic_loss")}
        trainer.model.vocoder.cpu().eval().save(out, mel_cfg, training)
    return out
