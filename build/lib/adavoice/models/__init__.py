"""Models, one per file: acoustic (FastSpeech 2 + AdaSpeech)."""
