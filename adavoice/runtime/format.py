"""The bundle format (DESIGN §8), shared by the exporter (torch) and the runtime (no torch).

A bundle is a folder::

    bundle.json              format, base hash, text front end, mel, graphs, defaults
    acoustic.onnx            tokens + voice tensors + knobs -> mel, durations
    vocoder.onnx             mel -> wave (the renderer ``auto`` picks); vocoder-fast.onnx
    postfilter.onnx          where the base post-filters: mel + the voice's postfilter.* ->
                             filtered mel, before the vocoder entries that name it
    voices/<slug>.json       name, kind, base hash, defaults, tensors' sha256, own graph or none
    voices/<slug>.safetensors  speaker_vector, utterance_vector, norm_scale, norm_bias (and,
                             with a post-filter, postfilter.*: the voice's own or the base's)
    voices/<slug>.onnx       only for kinds that change weights (lora, decoder)

>>> voice_slug("flite:rms@pitch -200")
'flite-rms-pitch-200'
"""

from __future__ import annotations

import re

from adavoice.atomic import sha256_file
from adavoice.errors import ConfigError

BUNDLE_FORMAT_VERSION = 1
BUNDLE_KIND = "adavoice-bundle"
VOICE_KIND = "adavoice-bundle-voice"
BUNDLE_JSON = "bundle.json"
VOICES_DIR = "voices"
VOICE_TENSORS = ("speaker_vector", "utterance_vector", "norm_scale", "norm_bias")
# a voice file's post-filter graph inputs (the voice's own values, or the base's) and, in an
# adapter bundle, its own post-filter values: both named "postfilter.<tensor>"
POSTFILTER_INPUTS = "postfilter."
KNOBS = ("length_scale", "pitch_shift", "energy_scale")


def voice_slug(name: str) -> str:
    """A file stem for a voice name: letters, digits, ``-``, ``_`` and ``.``."""
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", str(name)).strip("-.")[:100]
    if not slug:
        raise ConfigError(f"a voice name needs a letter or digit: {name!r}")
    return slug


sha256_of = sha256_file  # the bundle's checksums are the artifacts' (adavoice.atomic)
