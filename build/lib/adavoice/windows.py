"""How a long mel is cut into vocoder passes: pure arithmetic, shared by the torch renderer
(:class:`adavoice.models.universal.HiFiGANRenderer`) and the runtime without torch, so both
cut the same way and give the same samples.

Every pass has one of a few lengths (``pass_frames``); a mel up to the longest is padded to
the next length by repeating its last frame; a longer one is cut into windows of the longest
length with ``context`` frames of overlap each side, the last window padded like a short mel,
and the windows' middles joined.

>>> [(p.first, p.stop, p.length, p.keep_from, p.keep_to) for p in plan_passes(100, (128, 256))]
[(0, 100, 128, 0, 99)]
>>> plan = plan_passes(600, (128, 256), context=16)
>>> [(p.first, p.stop, p.length, p.keep_from, p.keep_to) for p in plan]
[(0, 256, 256, 0, 224), (208, 464, 256, 16, 240), (432, 600, 256, 16, 167)]
>>> sum(p.keep_to - p.keep_from for p in plan)  # frames - 1 frame steps, each hop samples
599
"""

from __future__ import annotations

from typing import NamedTuple


class Pass(NamedTuple):
    """Run the vocoder on ``mel[..., first:stop]`` padded to ``length`` frames (last frame
    repeated); keep its samples ``[keep_from * hop, keep_to * hop)``."""

    first: int
    stop: int
    length: int
    keep_from: int
    keep_to: int


def plan_passes(frames: int, pass_frames: tuple[int, ...] | None, context: int = 16
                ) -> list[Pass]:
    """The passes that render a mel of ``frames`` frames (``pass_frames=None``: one pass as it
    comes). The kept samples join to ``(frames - 1) * hop``."""
    if not pass_frames:
        return [Pass(0, frames, frames, 0, frames - 1)]
    lengths = sorted(pass_frames)
    window = lengths[-1]
    if window <= 2 * context:
        raise ValueError("the longest pass must exceed twice the context")

    def padded(first: int) -> int:
        return next(n for n in lengths if n >= frames - first)

    if frames <= window:
        return [Pass(0, frames, padded(0), 0, frames - 1)]
    body, passes, start = window - 2 * context, [], 0
    while start < frames - 1:
        first = max(0, start - context)
        if frames - first <= window:  # the last window reaches the end: padded, not cut
            passes.append(Pass(first, frames, padded(first), start - first, frames - 1 - first))
            break
        passes.append(Pass(first, first + window, window, start - first, start + body - first))
        start += body
    return passes
