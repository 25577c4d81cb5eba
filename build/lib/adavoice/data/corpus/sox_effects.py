"""Which sox effects a voice SPEC may name: only those that transform the audio they are given.

A SPEC's effects go to sox after its output file, so an unfiltered list could make sox read or
write any file (``noiseprof /path`` writes a noise profile, ``newfile`` and ``restart`` start new
output files, ``fir`` and ``noisered`` read files, ``ladspa`` loads a plugin, ``spectrogram``
writes a PNG), and ``synth`` would replace the voice with generated sound of any length. sox
starts a new effect at every word that is an effect name (case-insensitively), so the rule is
per word: the first word is an allowed effect, and every word is an allowed effect, an option
flag (``-h``), a keyword from :data:`EFFECT_KEYWORDS`, or a number with units (``1.12``,
``-300``, ``3k``, ``0.5q``, ``-6dB``, ``1v0.5,2v0.5``, ``6:-70,-60,-20``). A path, a quoted
string or any other word is refused.

>>> refused_word(("speed", "1.12", "tempo", "0.893"))
>>> refused_word(("noiseprof", "/tmp/x"))
'noiseprof'
>>> refused_word(("gain", "-n", "/tmp/x"))
'/tmp/x'
"""

from __future__ import annotations

import re
import shutil

from adavoice.errors import EngineError

ALLOWED_EFFECTS = frozenset(
    "allpass band bandpass bandreject bass bend channels chorus compand contrast dcshift deemph "
    "delay dither downsample earwax echo echos equalizer fade flanger gain highpass hilbert "
    "loudness lowpass mcompand norm overdrive pad phaser pitch rate remix repeat reverb reverse "
    "riaa silence sinc speed stretch swap tempo treble tremolo trim upsample vad vol".split()
)
# Word arguments of allowed effects (compared in lower case, as sox compares effect names):
# fade types, flanger wave shapes and interpolations, vol gain types. None is a sox effect name.
EFFECT_KEYWORDS = frozenset(
    "q h t l p sine triangle linear quadratic amplitude power db".split()
)
# `-` (remix: all channels, repeat: forever) and reverb's one long option
_LONE_OPTIONS = frozenset({"-", "--wet-only"})
_FLAG = re.compile(r"-[A-Za-z]")
# digits with the separators and unit letters sox arguments use (k: kHz; q/o/h: filter width;
# s: samples; d/dB: decibels; t: time; p/v/i: remix gains; c: cents; e: exponent); one digit at
# least, so no effect name can match
_NUMBER = re.compile(r"(?=.*[0-9])[0-9.,:;+\-=%@kKqohsdBtpvice]+")


def refused_word(effects: tuple[str, ...] | list[str]) -> str | None:
    """The first word of a sox effect list that the rule above refuses, or None when all pass.
    An empty list passes (no effects)."""
    for index, word in enumerate(effects):
        lower = word.lower()
        if lower in ALLOWED_EFFECTS:
            continue
        if index == 0:
            return word  # sox expects an effect name here
        if lower in EFFECT_KEYWORDS or word in _LONE_OPTIONS or _FLAG.fullmatch(word):
            continue
        # mcompand takes each band's compand arguments as one quoted, space-separated word
        if word.split() and all(_NUMBER.fullmatch(part) for part in word.split()):
            continue
        return word
    return None


def require_sox() -> str:
    """The sox executable's path; EngineError when sox is not installed."""
    sox = shutil.which("sox")
    if sox is None:
        raise EngineError("sox is not installed", fix="install it with `make install-system`")
    return sox
