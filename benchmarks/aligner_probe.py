"""Aligner-only probe: train a token embedding + AlignmentEncoder alone (forward-sum loss, the
binarisation loss optional) on the English base corpus and report, every ``--every`` steps, the
phone-boundary error of its MAS durations against espeak-ng's own timings (the same measure as
``benchmarks/base.py``). A few hundred steps here tell whether a setting can align at all, for a
fraction of a base-model run.

    .venv/bin/python benchmarks/aligner_probe.py --steps 600 --lr 3e-3
    .venv/bin/python benchmarks/aligner_probe.py --steps 600 --raw-mel --temperature 0.0005

Flags: ``--init DIR`` starts from a base release's aligner (and its token table) instead of
from scratch; ``--separators skip`` lets a separator take no frame in both the forward-sum loss
and MAS (:func:`forward_sum_loss_skippable`); ``--separators drop`` aligns without the word-
separator (space) tokens, which then get zero frames (espeak's timings have no pause between
words); ``--tokens split`` keeps stress marks as tokens of their own (the first base model's
table); ``--raw-mel`` feeds the aligner unstandardised log-mels; ``--blank`` sets the forward-
sum blank log-probability; ``--token-scale`` gives each token its own learned spread
(``aligner_ops.add_token_scale``); ``--win-length`` sets the analysis window of the
aligner's mel (from scratch; the hop stays 256); ``--mel-floor`` clamps the aligner's log-mel
from below; ``--overfit N`` repeats the first batch N times (a loss-only check).
Prints one JSON line per evaluation and writes them all to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adavoice.config import MelConfig
from adavoice.data.features import FeatureCache
from adavoice.data.manifest import Manifest
from adavoice.nn.alignment import (
    AlignmentEncoder,
    beta_binomial_prior,
    binarization_loss,
    forward_sum_loss,
    monotonic_alignment_search,
)
from adavoice.text import SymbolTable, TextProcessor
from adavoice.text.pack import LanguagePack
from adavoice.train.acoustic_data import AcousticDataset, collate_acoustic, corpus_statistics
from adavoice.train.batching import frame_budget_batches

sys.path.insert(0, str(Path(__file__).parent))
from aligner_ops import (  # noqa: E402
    add_token_scale,
    forward_sum_loss_skippable,
    monotonic_alignment_search_skippable,
)
from base import boundary_errors_ms  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/corpus-en", type=Path)
    parser.add_argument("--tokens", choices=("joined", "split"), default="joined")
    parser.add_argument("--separators", choices=("keep", "drop", "skip"), default="keep")
    parser.add_argument("--init", type=Path, default=None)
    parser.add_argument("--eval-split", default="valid",
                        help="score on this split's plain-espeak utterances ('train' picks "
                             "settings away from the validation sentences)")
    parser.add_argument("--eval-limit", type=int, default=None)
    parser.add_argument("--raw-mel", action="store_true")
    parser.add_argument("--temperature", type=float, default=0.005)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--blank", type=float, default=-1.0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--binarize-from", type=int, default=None)
    parser.add_argument("--overfit", type=int, default=0)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--max-frames", type=int, default=6000)
    parser.add_argument("--token-scale", action="store_true",
                        help="each token gets its own spread (aligner_ops.add_token_scale)")
    parser.add_argument("--win-length", type=int, default=None,
                        help="analysis window of the aligner's mel (from scratch only; the "
                             "hop stays 256)")
    parser.add_argument("--mel-floor", type=float, default=None,
                        help="clamp the aligner's log-mel from below (natural log)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)

    manifest = Manifest.load(args.data)
    if args.init is not None:
        from adavoice.api import BaseModel

        base = BaseModel.load(args.init, precision="float32")
        processor, mel_config = base.processor, base.cfg.mel
        if base.model.aligner_embedding is None:
            raise SystemExit("--init needs a base whose aligner has its own token table")
        embedding, aligner = base.model.aligner_embedding, base.model.aligner
        embedding.train(), aligner.train()
    else:
        pack = LanguagePack.load("en").with_tokenizer("phonemes")
        table = None
        if args.tokens == "split":
            table = SymbolTable.from_symbols(pack.kept_punctuation + pack.stress_marks
                                             + pack.phonemes, "en", "phonemes")
        processor = TextProcessor(pack, symbols=table, emit_warnings=False)
        mel_config = MelConfig()
        if args.win_length is not None:
            mel_config = dataclasses.replace(mel_config, win_length=args.win_length)
    cache = FeatureCache(args.data / ".feature-cache", mel_config)
    speakers = sorted({u.speaker for u in manifest})
    train = AcousticDataset(manifest.split("train"), processor, cache, speakers)
    if args.init is None:
        center, scale = (0.0, 1.0) if args.raw_mel else corpus_statistics(train)["mel"]
        embedding = nn.Embedding(len(processor.symbols), 128, padding_idx=0)
        aligner = AlignmentEncoder(80, 128, 80, args.temperature, center, scale)
    if args.token_scale:
        add_token_scale(aligner, embedding.embedding_dim)
    params = list(embedding.parameters()) + list(aligner.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), weight_decay=1e-6)
    lengths = train.frame_lengths(256, 22050)
    space = processor.symbols.encode([" "])[0]
    separator = space if args.separators == "drop" else None
    skipping = args.separators == "skip"

    def aligned(item):
        """The item the aligner sees: without separator tokens when they are dropped."""
        if separator is None:
            return item
        return dataclasses.replace(item, ids=item.ids[item.ids != separator])

    def floored(mel):
        return mel if args.mel_floor is None else mel.clamp(min=args.mel_floor)

    def durations(batch):
        ids = batch.tokens[0][batch.text_mask[0]]
        keep = ids != separator if separator is not None else torch.ones_like(ids, dtype=bool)
        tokens = ids[keep].unsqueeze(0)
        text_mask = torch.ones_like(tokens, dtype=torch.bool)
        frames = batch.frame_mask.sum(1)
        prior = torch.log(beta_binomial_prior(int(frames[0]), tokens.shape[1]).clamp(min=1e-8))
        log_attention = aligner(floored(batch.mel), embedding(tokens), text_mask,
                                prior.unsqueeze(0))
        hard = (monotonic_alignment_search_skippable(log_attention, text_mask.sum(1), frames,
                                                     tokens == space) if skipping
                else monotonic_alignment_search(log_attention, text_mask.sum(1), frames))
        out = torch.zeros(ids.shape[0], dtype=torch.long)
        out[keep] = hard.sum(1)[0].long()
        separator_frames.extend(out[ids == space].tolist())
        return out

    rows, step, epoch, start = [], 0, 0, time.perf_counter()

    separator_frames: list[int] = []  # frames each separator took in the last evaluation

    def evaluate(step, loss):
        separator_frames.clear()
        with torch.no_grad():
            errors = boundary_errors_ms(processor, args.data, cache, speakers, durations,
                                        args.eval_split, args.eval_limit)
        row = {"step": step, "loss": None if loss is None else round(float(loss.detach()), 4),
               "mean_abs_error_ms": round(float(errors.mean()), 1),
               "median_abs_error_ms": round(float(np.median(errors)), 1),
               "share_within_20ms": round(float((errors <= 20).mean()), 3),
               "separator_frames_mean": round(float(np.mean(separator_frames)), 2),
               "separators_without_frames": int(np.sum(np.asarray(separator_frames) == 0)),
               "separators": len(separator_frames),
               "wall_s": round(time.perf_counter() - start)}
        print(json.dumps(row), flush=True)
        rows.append(row)

    if args.init is not None:
        evaluate(0, None)  # where the release starts
    while step < args.steps:
        batches = frame_budget_batches(lengths, args.max_frames, 0, epoch)
        if args.overfit:
            batches = [batches[0]] * args.overfit
        for indices in batches:
            if step >= args.steps:
                break
            batch = collate_acoustic([aligned(train[i]) for i in indices])
            for group in optimizer.param_groups:
                group["lr"] = args.lr * min(1.0, (step + 1) / 200)
            log_attention = aligner(floored(batch.mel), embedding(batch.tokens), batch.text_mask,
                                    batch.log_prior)
            text_lengths, frame_lengths = batch.text_mask.sum(1), batch.frame_mask.sum(1)
            skippable = (batch.tokens == space) if skipping else None
            if skipping:
                loss = forward_sum_loss_skippable(log_attention, text_lengths, frame_lengths,
                                                  skippable)
            else:
                loss = forward_sum_loss(log_attention, text_lengths, frame_lengths, args.blank)
            if args.binarize_from is not None and step >= args.binarize_from:
                hard = (monotonic_alignment_search_skippable(log_attention, text_lengths,
                                                             frame_lengths, skippable)
                        if skipping else monotonic_alignment_search(log_attention, text_lengths,
                                                                    frame_lengths))
                loss = loss + binarization_loss(hard, log_attention)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            step += 1
            if step % args.every == 0 or step == args.steps:
                evaluate(step, loss)
        epoch += 1
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": "python benchmarks/aligner_probe.py " + " ".join(
            sys.argv[1:] if argv is None else argv), "evaluations": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
