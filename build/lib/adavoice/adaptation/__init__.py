"""Voice adaptation: settings (``config``), adapter kinds (``kinds``), clips (``clips``), the
loop (``loop``) and bundle I/O (``bundle``). The public entry point is ``adavoice.adapt``,
which wraps the loop's tensors into a ``Voice``.
"""

from adavoice.adaptation.config import KINDS, AdapterConfig

__all__ = ["KINDS", "AdapterConfig"]
