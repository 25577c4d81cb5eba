"""adavoice: low-resource and adaptive text-to-speech.

Heavy modules load on first use, so ``import adavoice`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Audio", "BaseModel", "Voice", "adapt", "AdavoiceError"]


def __getattr__(name: str):
    if name == "BaseModel":
        from adavoice.api import BaseModel

        return BaseModel
    if name == "Voice":
        from adavoice.api import Voice

        return Voice
    if name == "adapt":
        import adavoice.adapt as adapt_package  # a callable package: adavoice.adapt(...)

        return adapt_package
    if name == "Audio":
        from adavoice.audio import Audio

        return Audio
    if name == "AdavoiceError":
        from adavoice.errors import AdavoiceError

        return AdavoiceError
    raise AttributeError(f"module 'adavoice' has no attribute {name!r}")
