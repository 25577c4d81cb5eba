"""Explicit export wrappers (ONNX) with parity checks against the eager models."""
