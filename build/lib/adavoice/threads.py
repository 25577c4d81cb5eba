"""How many CPU threads torch should use, so that adavoice does not fight other work.

Torch starts one thread per core. When another process already keeps the cores busy, those
threads wait on each other: `adavoice adapt` took 3.3-4.5 s a step while a second process used
both cores of a 2-core machine, against ~0.3 s with one thread. So without an explicit count
(``--threads`` or ``OMP_NUM_THREADS``) adavoice takes the cores the 1-minute load average
leaves idle, at least one.

>>> choose_threads(3, cores=8, load=0.0, environ={})
3
>>> choose_threads(None, cores=2, load=1.2, environ={})
1
>>> choose_threads(None, cores=8, load=0.3, environ={})
8
>>> choose_threads(None, cores=8, load=0.0, environ={"OMP_NUM_THREADS": "2"})
2
"""

from __future__ import annotations

import os
import sys

from adavoice.errors import ConfigError


def choose_threads(requested: int | None = None, cores: int | None = None,
                   load: float | None = None, environ=None) -> int:
    """``requested``, else ``OMP_NUM_THREADS``, else the cores the load leaves idle."""
    environ = os.environ if environ is None else environ
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads is {requested}, must be at least 1")
        return int(requested)
    value = str(environ.get("OMP_NUM_THREADS", "")).strip()
    if value.isascii() and value.isdigit() and int(value) > 0:  # '²' is a digit, not a number
        return int(value)
    if cores is None:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, cores - round(load)))


def apply_threads(count: int) -> None:
    """Make torch (imported now or later) use ``count`` threads."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(count)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
