"""Length-bucketed batching by frame budget, deterministic per (seed, epoch).

>>> batches = frame_budget_batches([10, 50, 20, 40], max_frames=60, seed=0, epoch=0)
>>> sorted(i for b in batches for i in b)
[0, 1, 2, 3]
"""

from __future__ import annotations

import random


def frame_budget_batches(lengths: list[int], max_frames: int, seed: int, epoch: int,
                         max_items: int = 64, bucket_size: int = 512) -> list[list[int]]:
    """Group indices so each batch's padded size (items x longest) stays within ``max_frames``.

    Items are shuffled, cut into buckets, sorted by length inside each bucket (so a batch holds
    similar lengths and little padding), batched, and the batch order shuffled again.
    An item longer than the budget still gets a batch of its own.
    """
    rng = random.Random(seed * 100003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    for start in range(0, len(order), bucket_size):
        bucket = sorted(order[start:start + bucket_size], key=lambda i: lengths[i])
        current: list[int] = []
        longest = 0
        for index in bucket:
            longest_if_added = max(longest, lengths[index])
            if current and (longest_if_added * (len(current) + 1) > max_frames
                            or len(current) >= max_items):
                batches.append(current)
                current, longest_if_added = [], lengths[index]
            current.append(index)
            longest = longest_if_added
        if current:
            batches.append(current)
    rng.shuffle(batches)
    return batches
