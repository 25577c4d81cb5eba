"""Voice adaptation: adapter kinds (``adapter``), settings (``config``), clips (``data``), the
loop (``run``) and bundle I/O (``bundle``).

``adavoice.adapt(base, data, ...)`` is the loop itself: this package is callable, so the
package and the function the issue names share one spelling.

>>> import adavoice
>>> callable(adavoice.adapt)
True
"""

from __future__ import annotations

import sys
import types

from adavoice.adapt.config import KINDS, AdapterConfig

__all__ = ["KINDS", "AdapterConfig", "adapt"]


def adapt(*args, **kwargs):
    """See :func:`adavoice.adapt.run.adapt`."""
    from adavoice.adapt.run import adapt as run_adapt

    return run_adapt(*args, **kwargs)


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return adapt(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
