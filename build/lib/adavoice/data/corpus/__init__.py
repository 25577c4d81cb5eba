"""Synthetic corpora: sentences from system text sources spoken by installed engines (DESIGN §3).

``build_corpus`` is the entry point; ``EngineVoice``/``render`` speak one sentence; the
``text_sources`` module chooses and filters the sentences.
"""

from adavoice.data.corpus.build import build_corpus
from adavoice.data.corpus.voices import EngineVoice, Rendering, check_voice, render

__all__ = ["Rendering", "EngineVoice", "build_corpus", "check_voice", "render"]
