"""A voice's own post-filter values: after the adapter is trained, the base's learned mel
post-filter (adavoice.models.mel_postfilter) is tuned to the new voice on the same clips.

The base's post-filter learned the texture of the base corpus's voices; a new voice's mels
come out of the adapted decoder in their own way, and its recordings have their own texture.
So the few tensors :func:`~adavoice.models.mel_postfilter.voice_tensor_names` lists (every
bias and the output layer: 417 numbers for the shipped filter) are tuned on pairs of (the
adapted voice's mel of each clip, frame-aligned with it; the clip's recording), by the loss
that trained the filter: L1 plus the least-squares adversarial loss and feature matching of
the critic the base ships beside the filter (``postfilter/critic/``), which keeps learning on
the voice's clips. With transcripts each clip is decoded twice (teacher-forced and from the
predicted pitch and energy, as synthesis feeds the decoder; the aligner's durations); without,
from the mel encoder's frames, as untranscribed adaptation decodes. The hidden kernels stay the
base's. Where the CPU runs bfloat16 natively the convolutions of the tuning run in it
(autocast; twice as fast on an AVX512-BF16 EPYC). Opt-in (``AdapterConfig.postfilter_steps``,
0 by default): across six adapted voices it moved DistillMOS from +0.15 to -0.14, +0.01 on
average (BENCHMARKS.md "A post-filter per voice").
"""

from __future__ import annotations

import random
import time

import torch

from adavoice.adaptation.config import AdapterConfig
from adavoice.models.discriminators import critic_loss, generator_terms
from adavoice.models.mel_postfilter import CRITIC_DIR, VOICE_PREFIX, MelCritic
from adavoice.models.universal import bfloat16_is_fast
from adavoice.train.settings import POSTFILTER_RUN  # the loss weights the filter was trained with


def skip_reason(base, cfg: AdapterConfig) -> str | None:
    """Why a voice of ``base`` gets no post-filter values of its own, or None when it does."""
    if cfg.postfilter_steps == 0:
        return "postfilter_steps is 0"
    if not base.has_postfilter:
        return "the base has no learned post-filter"
    if not (base.folder / "postfilter" / CRITIC_DIR / "config.json").is_file():
        return "the base's post-filter ships no critic (postfilter/critic/)"
    return None


def _crops(pairs, segment, batch, rng):
    """``batch`` random crops of ``segment`` frames from ``pairs`` (all at least that long):
    (inputs, targets), each (batch, n_mels, segment)."""
    inputs, targets = [], []
    for _ in range(batch):
        pair = rng.choice(pairs)
        start = rng.randrange(pair["recording"].shape[1] - segment + 1)
        inputs.append(rng.choice(pair["mels"])[:, start:start + segment])
        targets.append(pair["recording"][:, start:start + segment])
    return torch.stack(inputs), torch.stack(targets)


def tune_voice_postfilter(base, condition, train_task, valid_task, cfg: AdapterConfig,
                          progress: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors for the bundle, named ``postfilter.<name>``; a record for its config) of the
    voice ``condition`` adapted on ``train_task``'s clips (adavoice.adaptation.loop._Task);
    ``valid_task``'s clips, if any, give the held-out L1 before and after."""
    from adavoice.progress import progress_bar

    started = time.perf_counter()
    net = base.mel_postfilter("universal")  # shared and frozen: only ``own`` is trained
    own = {name: value.requires_grad_(True) for name, value in net.voice_values().items()}
    critic = MelCritic.from_dir(base.folder / "postfilter" / CRITIC_DIR).train()
    sources = [False, True] if train_task.transcribed else [False]
    decoded = [train_task.decoded(condition, predicted) for predicted in sources]
    pairs = [{"recording": clips[0]["recording"], "mels": [c["mel"] for c in clips]}
             for clips in zip(*decoded, strict=True)]
    segment = min(cfg.postfilter_segment, max(p["recording"].shape[1] for p in pairs))
    pairs = [p for p in pairs if p["recording"].shape[1] >= segment]
    betas = (0.8, 0.99)
    optimizer = torch.optim.Adam(own.values(), lr=cfg.postfilter_learning_rate, betas=betas)
    critic_optimizer = torch.optim.AdamW(critic.parameters(), lr=cfg.postfilter_learning_rate,
                                         betas=betas, weight_decay=1e-6)
    rng = random.Random(cfg.seed)
    valid = ([{"recording": p["recording"], "mel": p["mel"]}
              for p in valid_task.decoded(condition, train_task.transcribed)]
             if valid_task is not None else [])

    @torch.no_grad()
    def held_out_l1() -> float | None:
        if not valid:
            return None
        errors = torch.cat([(net(p["mel"], own) - p["recording"]).abs().flatten()
                            for p in valid])
        return round(float(errors.mean()), 4)

    before = held_out_l1()
    half = bfloat16_is_fast()  # the convolutions in bfloat16 where this CPU has it: 2x faster

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=half)

    bar = progress_bar(cfg.postfilter_steps, "voice post-filter", disable=not progress)
    with torch.enable_grad():
        for _ in range(cfg.postfilter_steps):
            inputs, targets = _crops(pairs, segment, cfg.postfilter_batch, rng)
            with autocast():
                post = net(inputs, own)
                loss = critic_loss(critic, targets, post)
            critic_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            critic_optimizer.step()
            critic.requires_grad_(False)  # the filter's step needs no critic gradients
            with autocast():
                terms = generator_terms(critic, targets, post)
            critic.requires_grad_(True)
            l1 = (post.float() - targets).abs().mean()
            total = (POSTFILTER_RUN.l1_weight * l1 + terms["adversarial_loss"].float()
                     + POSTFILTER_RUN.feature_weight * terms["feature_loss"].float())
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            bar.update(1)
    bar.close()
    tensors = {VOICE_PREFIX + name: value.detach().clone() for name, value in own.items()}
    record = {"base_postfilter_sha256": base.postfilter_id,
              "steps": cfg.postfilter_steps, "tuned_numbers": sum(
                  v.numel() for v in tensors.values()),
              "precision": "bfloat16" if half else "float32",
              "held_out_l1_before": before, "held_out_l1_after": held_out_l1(),
              "wall_s": round(time.perf_counter() - started, 1)}
    return tensors, record
