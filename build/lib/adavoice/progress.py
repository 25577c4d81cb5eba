"""Progress of long jobs that fits a terminal and a log file alike.

On a terminal a tqdm bar redraws in place. When stderr is not a terminal (CI, a log file, a
pipe) a bar would write a line per redraw (``adavoice adapt ... 2> log`` wrote 6 KB for 40
steps), so :func:`progress_bar` prints one plain line every ``LINE_EVERY_FRACTION`` of the
work or every ``LINE_EVERY_S`` seconds, whichever comes first, and one at the end.

>>> import io
>>> stream = io.StringIO()
>>> with progress_bar(200, "adapt", stream=stream) as bar:
...     for _ in range(200):
...         bar.update(1)
...         bar.set_postfix(mel="0.500")
>>> lines = stream.getvalue().splitlines()
>>> len(lines), lines[-1].split(" (")[0]
(10, 'adapt: 200/200 mel=0.500')
"""

from __future__ import annotations

import sys
import time

LINE_EVERY_FRACTION = 0.1
LINE_EVERY_S = 30.0


class LineProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``close`` as occasional plain lines."""

    def __init__(self, total: int, desc: str, initial: int = 0, unit: str = "it", stream=None):
        self.total, self.desc, self.n, self.unit = total, desc, initial, unit
        self.stream = stream or sys.stderr
        self.postfix = ""
        self.started = self.last_time = time.monotonic()
        self.last_n = initial
        self.closed = False

    def update(self, count: int = 1) -> None:
        self.n += count
        step = max(1, int(self.total * LINE_EVERY_FRACTION))
        due = self.n // step > self.last_n // step
        if due or time.monotonic() - self.last_time >= LINE_EVERY_S:
            self._line()

    def set_postfix(self, **values) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def _line(self) -> None:
        elapsed = time.monotonic() - self.started
        extra = f" {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.n}/{self.total}{extra} ({elapsed:.0f} s)", file=self.stream,
              flush=True)
        self.last_time, self.last_n = time.monotonic(), self.n

    def close(self) -> None:
        if not self.closed and self.n != self.last_n:
            self._line()
        self.closed = True

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent(LineProgress):
    def _line(self) -> None:
        self.last_n = self.n


def progress_bar(total: int, desc: str, initial: int = 0, unit: str = "it",
                 disable: bool = False, stream=None):
    """A tqdm bar on a terminal, :class:`LineProgress` elsewhere, nothing when ``disable``."""
    if disable:
        return _Silent(total, desc, initial, unit, stream)
    target = stream or sys.stderr
    if stream is None and getattr(target, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
    return LineProgress(total, desc, initial, unit, stream)
