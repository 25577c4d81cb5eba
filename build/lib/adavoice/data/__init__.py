"""Datasets: the manifest format, readers for public corpora, feature cache, synthetic corpora."""

from adavoice.data.manifest import Manifest, Utterance

__all__ = ["Manifest", "Utterance"]
