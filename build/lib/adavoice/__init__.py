"""adavoice: low-resource and adaptive text-to-speech.

Heavy modules load on first use, so ``import adavoice`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["AdavoiceError", "Audio", "BaseModel", "SynthesisConfig", "Voice", "adapt"]

_HOMES = {"BaseModel": "adavoice.api", "Voice": "adavoice.api", "adapt": "adavoice.api",
          "Audio": "adavoice.audio", "SynthesisConfig": "adavoice.config",
          "AdavoiceError": "adavoice.errors"}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'adavoice' has no attribute {name!r}")
