"""Speed and memory of one synthesis call: real-time factor and peak memory.

What each number means (see :class:`TimingReport`):

* ``wall_s``: wall-clock seconds of the call (``time.perf_counter``; CUDA is synchronised
  before the clock stops when the process already uses it).
* ``audio_s``: seconds of audio the call produced, from ``audio_seconds_fn(result)``.
* ``rtf``: real-time factor ``wall_s / audio_s``; below 1 is faster than real time
  (0.01 = one second of speech in 10 ms).
* ``peak_rss_mb``: highest resident set size of the whole process seen during the call, MiB,
  sampled from ``/proc/self/statm`` every ``sample_interval_s`` by a background thread (a spike
  shorter than the interval can be missed). ``baseline_rss_mb`` is the RSS just before the
  call, so ``rss_increase_mb`` is what the call added on top of what was already resident
  (``ru_maxrss`` cannot be reset, which is why it is not used where /proc exists).
* ``peak_traced_mb``: peak of Python-level allocations during the call (``tracemalloc``),
  MiB. Tensors allocated by torch's C++ allocator are not in it; they are in the RSS.
* ``peak_cuda_mb``: ``torch.cuda.max_memory_allocated`` during the call, or None when the
  process has not initialised CUDA.

>>> report = measure(lambda n: [0.0] * n, 100_000, audio_seconds_fn=lambda result: 2.0)
>>> report.audio_s, report.rtf > 0, report.peak_traced_mb > 0.5
(2.0, True, True)
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_MIB = 1024.0 * 1024.0
_STATM = "/proc/self/statm"


@dataclass(frozen=True)
class TimingReport:
    """Result of :func:`measure`; ``result`` is what the measured call returned.

    >>> TimingReport(0.5, 2.0, 0.25, 300.0, 10.0, 280.0).rss_increase_mb
    20.0
    """

    wall_s: float
    audio_s: float
    rtf: float
    peak_rss_mb: float
    peak_traced_mb: float
    baseline_rss_mb: float
    peak_cuda_mb: float | None = None
    threads: int | None = None
    result: Any = field(default=None, repr=False, compare=False)

    @property
    def rss_increase_mb(self) -> float:
        return self.peak_rss_mb - self.baseline_rss_mb

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready numbers (the call's result is left out)."""
        return {
            "wall_s": self.wall_s, "audio_s": self.audio_s, "rtf": self.rtf,
            "peak_rss_mb": self.peak_rss_mb, "baseline_rss_mb": self.baseline_rss_mb,
            "rss_increase_mb": self.rss_increase_mb, "peak_traced_mb": self.peak_traced_mb,
            "peak_cuda_mb": self.peak_cuda_mb, "threads": self.threads,
        }


def current_rss_mb() -> float:
    """Resident set size of this process now, MiB (peak so far where /proc is missing)."""
    try:
        with open(_STATM, "rb") as fh:
            resident_pages = int(fh.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / _MIB
    except (OSError, ValueError, IndexError):
        import resource

        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        return max_rss / (_MIB if sys.platform == "darwin" else 1024.0)


class _PeakRssSampler:
    """Background thread that keeps the highest RSS seen between start() and stop()."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.peak_mb = current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, current_rss_mb())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_mb())
        return self.peak_mb


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, restoring the old count after.

    ``None`` leaves torch alone (and does not import it).
    """
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _cuda_in_use() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())


def default_audio_seconds(result: Any) -> float:
    """Duration of what a synthesis call returned: anything with ``duration_s`` (such as
    :class:`adavoice.audio.Audio`) or a ``(samples, sample_rate_hz)`` pair."""
    if hasattr(result, "duration_s"):
        return float(result.duration_s)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], (int, float)):
        return len(result[0]) / float(result[1])
    raise TypeError(
        f"cannot tell how much audio a {type(result).__name__} holds; pass audio_seconds_fn"
    )


def measure(
    fn: Callable[..., Any],
    *args: Any,
    audio_seconds_fn: Callable[[Any], float] = default_audio_seconds,
    threads: int | None = None,
    trace_python: bool = True,
    sample_interval_s: float = 0.002,
    **kwargs: Any,
) -> TimingReport:
    """Call ``fn(*args, **kwargs)`` once and report its speed and memory (module docstring).

    ``threads`` sets torch's intra-op thread count for the call; ``trace_python=False``
    skips tracemalloc (it slows Python-heavy code; ``peak_traced_mb`` is then NaN).
    """
    cuda = _cuda_in_use()
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started_tracing = trace_python and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    if trace_python:
        tracemalloc.reset_peak()
    sampler = _PeakRssSampler(sample_interval_s)
    baseline_mb = sampler.peak_mb
    sampler.start()
    try:
        with torch_threads(threads):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            if cuda:
                torch.cuda.synchronize()
            wall_s = time.perf_counter() - start
    finally:
        peak_rss_mb = sampler.stop()
        peak_traced_mb = tracemalloc.get_traced_memory()[1] / _MIB if trace_python else float("nan")
        if started_tracing:
            tracemalloc.stop()
    audio_s = float(audio_seconds_fn(result))
    return TimingReport(
        wall_s=wall_s,
        audio_s=audio_s,
        rtf=wall_s / audio_s if audio_s > 0 else float("inf"),
        peak_rss_mb=peak_rss_mb,
        peak_traced_mb=peak_traced_mb,
        baseline_rss_mb=baseline_mb,
        peak_cuda_mb=torch.cuda.max_memory_allocated() / _MIB if cuda else None,
        threads=threads,
        result=result,
    )
