"""`adavoice train postfilter`: a GAN post-filter (adavoice.models.mel_postfilter) on a frozen
base.

Pairs: for every training utterance of the corpus, the base's own mel of it, frame-aligned with
the recording (the aligner's durations), in two versions: teacher-forced (the recording's
pitch, energy and phoneme condition, whose harmonics line up with the recording's) and as
synthesis feeds the decoder (predicted pitch, energy and phoneme condition: what the
post-filter will be given). Each training crop takes one of the two at random; the target is
always the recording's mel. The pairs are computed once per run and kept in the run folder
(safetensors), so a resumed run does not compute them again.

Loss = ``l1_weight`` * L1(post-filtered, recording) + least-squares adversarial loss of a
patch discriminator over mel crops + ``feature_weight`` * feature matching (the
discriminator's hidden maps of recording and post-filtered crop). The base is never modified.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import torch

from adavoice.artifacts import write_json
from adavoice.config import read_json
from adavoice.data.features import FeatureCache, precompute
from adavoice.data.manifest import Manifest
from adavoice.errors import ConfigError
from adavoice.models.base_model import content_hash, load_base_model
from adavoice.models.discriminators import critic_loss, generator_terms
from adavoice.models.mel_postfilter import (
    CRITIC_DIR,
    MelCritic,
    MelPostfilter,
    MelPostfilterConfig,
)
from adavoice.postfilter import band_average
from adavoice.text import SymbolTable, TextProcessor
from adavoice.train.acoustic import _splits
from adavoice.train.acoustic_data import AcousticDataset, collate_acoustic
from adavoice.train.batching import frame_budget_batches
from adavoice.train.critic import Critic
from adavoice.train.loop import TrainConfig, Trainer, distributed_context, recent_mean
from adavoice.train.settings import POSTFILTER_RUN as RUN

SOURCES = ("teacher_forced", "synthesis")
PAIRS_NAME = "pairs.safetensors"
SOURCE_NAME = "pairs.json"  # the base weights and corpus the pairs came from


@torch.no_grad()
def base_pairs(base, cfg, rows, data: Path, max_frames: int = 6000,
               progress: bool = True) -> list[dict[str, torch.Tensor]]:
    """For each manifest row: ``recording`` (its mel) and the base's mel of it teacher-forced
    and as synthesis feeds the decoder, each (n_mels, T) float16 on the aligner's frames."""
    from adavoice.progress import progress_bar

    cache = FeatureCache(data / ".feature-cache", cfg.mel)
    precompute(rows, cache)
    processor = TextProcessor.from_symbols(SymbolTable.from_dict(cfg.symbols))
    dataset = AcousticDataset(rows, processor, cache, cfg.speakers)
    lengths = dataset.frame_lengths(cfg.mel.hop_length, cfg.mel.sample_rate_hz)
    # length-bucketed groups under the frame budget (little padding); their order is moot
    groups = frame_budget_batches(lengths, max_frames, seed=0, epoch=0)
    pairs: list[dict | None] = [None] * len(dataset)
    base.eval()
    bar = progress_bar(len(groups), "base mels", disable=not progress)
    for group in groups:
        batch = collate_acoustic([dataset[i] for i in group])
        args = (batch.tokens, batch.text_mask, batch.speakers, batch.mel, batch.frame_mask,
                batch.log_f0, batch.log_energy, batch.log_prior)
        forced = base(*args).mel
        synthesis = base(*args, predicted_variance=True).mel
        for row, index in enumerate(group):
            t = int(batch.frame_mask[row].sum())
            pairs[index] = {"recording": batch.mel[row, :, :t].half(),
                            "teacher_forced": forced[row, :, :t].half(),
                            "synthesis": synthesis[row, :, :t].half()}
        bar.update(1)
    bar.close()
    return pairs


def _save_pairs(path: Path, pairs: list[dict]) -> None:
    from adavoice.artifacts import write_weights

    write_weights(path, {f"{i}/{k}": v for i, p in enumerate(pairs) for k, v in p.items()})


def _cached_pairs(out: Path, source: dict) -> list[dict] | None:
    """The pairs an earlier session of this run computed, if they came from the same base
    weights and corpus and read back whole; else None (they are computed again)."""
    from safetensors.torch import load_file

    path, recorded = out / PAIRS_NAME, out / SOURCE_NAME
    try:
        if not path.is_file() or read_json(recorded) != source:
            return None
        flat = load_file(str(path))
        count = 1 + max(int(k.split("/")[0]) for k in flat)
        pairs = [{k: flat[f"{i}/{k}"] for k in ("recording", *SOURCES)} for i in range(count)]
    except Exception:  # a missing, damaged or foreign cache: it is only a cache
        return None
    return pairs if len(pairs) == source["rows"] else None


def detail_ratio(recordings: list[torch.Tensor], mels: list[torch.Tensor]) -> float:
    """Median over bands of (the recordings' across-band detail) / (the mels'): the spread
    over frames of a mel less its 5-band average. 1.0 means as detailed as the recordings;
    the base's own mels sit at 1.6-2.8 (BENCHMARKS.md "Sharper mels")."""
    def spread(items):
        return torch.stack([(m - band_average(m)).std(1) for m in items]).mean(0)

    ratio = spread([r.float() for r in recordings]) / spread([m.float() for m in mels])
    return round(float(ratio.median()), 3)


def train_postfilter(base_dir: str | Path, data: str | Path, out: str | Path,
                     steps: int = RUN.steps, device: str = "cpu", resume: bool = False,
                     channels: int = RUN.channels, layers: int = RUN.layers,
                     segment: int = RUN.segment, batch: int = RUN.batch,
                     learning_rate: float = RUN.learning_rate, l1_weight: float = RUN.l1_weight,
                     feature_weight: float = RUN.feature_weight,
                     critic_warmup: int = RUN.critic_warmup, adversarial: bool = True,
                     install: bool = False, progress: bool = True,
                     train_cfg: TrainConfig | None = None) -> Path:
    """Train a post-filter for the base in ``base_dir`` on the corpus ``data`` (the base's
    own training corpus is the natural choice); the release goes to ``out`` and, with
    ``install``, into the base folder as ``postfilter/`` (fp16). ``adversarial=False`` trains
    the same network on the L1 alone: a regression postnet on the frozen decoder, the
    comparison BENCHMARKS.md "A learned post-filter" measures."""
    out, data, base_dir = Path(out), Path(data), Path(base_dir)
    if segment < 8 or batch < 1:
        raise ConfigError("a post-filter needs crops of at least 8 frames and a batch of one "
                          "or more")
    base, cfg = load_base_model(base_dir)
    for parameter in base.parameters():
        parameter.requires_grad_(False)
    manifest = Manifest.load(data)
    train_rows, valid_rows = _splits(manifest)
    out.mkdir(parents=True, exist_ok=True)
    # under torchrun every rank computes the same settings and pairs; rank 0 alone writes them
    writer = distributed_context(device)[0] == 0
    settings_path = out / "postfilter-config.json"
    if resume and (out / "checkpoints" / "last.pt").is_file() and settings_path.is_file():
        recorded = read_json(settings_path)
    else:
        recorded = MelPostfilterConfig(
            n_mels=cfg.acoustic.n_mels, channels=channels, layers=layers,
            center=float(cfg.acoustic.aligner_mel_center),
            scale=float(cfg.acoustic.aligner_mel_scale),
        ).to_dict()
        if writer:
            settings_path.write_text(json.dumps(recorded, indent=2) + "\n")
    net = MelPostfilter(MelPostfilterConfig.from_dict(recorded))
    source = {"base_weights_sha256": content_hash(base_dir), "data": str(data.resolve()),
              "rows": len(train_rows)}
    pairs = _cached_pairs(out, source)
    if pairs is None:
        pairs = base_pairs(base, cfg, train_rows, data, progress=progress and writer)
        if writer:
            _save_pairs(out / PAIRS_NAME, pairs)
            write_json(out / SOURCE_NAME, source)
    held_out = list(valid_rows)[:32]
    valid = (base_pairs(base, cfg, Manifest(held_out, manifest.root), data, progress=False)
             if held_out else [])
    usable = [i for i, p in enumerate(pairs) if p["recording"].shape[1] >= segment]
    if not usable:
        raise ConfigError(f"no training utterance is {segment} frames long",
                          fix="use a smaller --segment")
    frames = sum(pairs[i]["recording"].shape[1] for i in usable)
    per_epoch = max(1, frames // (segment * batch))
    tcfg = train_cfg or TrainConfig(steps=steps, learning_rate=learning_rate,
                                    warmup_steps=min(200, steps // 10 + 1), grad_clip=10.0,
                                    validate_every=max(50, steps // 10), log_every=25)
    torch.manual_seed(tcfg.seed)
    dev = torch.device(device)

    def make_batches(epoch):
        rng = random.Random(tcfg.seed * 1000003 + epoch)
        crops = []
        for _ in range(per_epoch * batch):
            index = rng.choice(usable)
            start = rng.randrange(pairs[index]["recording"].shape[1] - segment + 1)
            crops.append((index, rng.choice(SOURCES), start))
        return [crops[i:i + batch] for i in range(0, len(crops), batch)]

    def load_batch(crops):
        inputs = torch.stack([pairs[i][source][:, s:s + segment] for i, source, s in crops])
        targets = torch.stack([pairs[i]["recording"][:, s:s + segment] for i, _, s in crops])
        return inputs.float().to(dev), targets.float().to(dev)

    def task(model, item, step):
        inputs, targets = item
        post = model(inputs)
        l1 = (post - targets).abs().mean()
        return {"loss": l1_weight * l1, "mel_loss": l1, "_real": targets, "_fake": post}

    @torch.no_grad()
    def validate(model, step):
        model.eval()
        recordings = [p["recording"].float() for p in valid]
        given = [p["synthesis"].float() for p in valid]
        post = [model(m) for m in given]

        def l1(mels):
            return round(float(torch.cat([(a - b).abs().flatten() for a, b in
                                          zip(mels, recordings, strict=True)]).mean()), 4)

        return {"mel_l1": l1(post), "input_mel_l1": l1(given),
                "detail_ratio": detail_ratio(recordings, post),
                "input_detail_ratio": detail_ratio(recordings, given)}

    critic = Critic(MelCritic(center=net.cfg.center, scale=net.cfg.scale),
                    loss_fn=lambda c, o: critic_loss(c, o["_real"], o["_fake"]),
                    model_terms=lambda c, o: generator_terms(c, o["_real"], o["_fake"]),
                    weights={"adversarial_loss": 1.0, "feature_loss": feature_weight},
                    learning_rate=learning_rate, warmup_steps=critic_warmup
                    ) if adversarial else None
    trainer = Trainer(net, task, make_batches, load_batch, tcfg, out, device,
                      validate=validate if valid else None, critic=critic)
    history = trainer.fit(resume, progress)
    if trainer.rank == 0:
        final = validate(trainer.model, trainer.step) if valid else None
        training = {"base_weights_sha256": source["base_weights_sha256"], "data": str(data),
                    "steps": trainer.step, "l1_weight": l1_weight, "adversarial": adversarial,
                    "feature_weight": feature_weight, "segment": segment, "batch": batch,
                    "learning_rate": tcfg.learning_rate,
                    "last_session_wall_s": trainer.last_session_wall_s,
                    "final_mel_loss": recent_mean(history, "mel_loss"), "validation": final}
        trainer.model.cpu().eval().save(out, training)
        if critic is not None:  # voices tune their own post-filter values against it
            critic.module.cpu().eval().save(out / CRITIC_DIR)
        if install:
            trainer.model.save(base_dir / "postfilter", training, half=True)
            if critic is not None:
                critic.module.save(base_dir / "postfilter" / CRITIC_DIR, half=True)
            else:  # a critic from an earlier install would not match this filter
                shutil.rmtree(base_dir / "postfilter" / CRITIC_DIR, ignore_errors=True)
    return out
