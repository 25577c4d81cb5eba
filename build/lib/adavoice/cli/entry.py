"""The ``adavoice`` console script. The SDK's CLI needs the ``sdk`` extra (torch, typer...);
an install of the runtime alone gets one line that says so instead of an ImportError."""

from __future__ import annotations

import importlib.util
import sys

SDK_MODULES = ("typer", "torch", "torchaudio", "librosa")


def main() -> None:
    missing = [name for name in SDK_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: the adavoice CLI needs the SDK ({', '.join(missing)} not installed) "
              f"(fix: pip install 'adavoice[sdk]'; the runtime alone runs as "
              f"`python -m adavoice.runtime BUNDLE TEXT --out a.wav`)", file=sys.stderr)
        sys.exit(1)
    from adavoice.cli.main import main as run

    run()
