"""libespeak-ng through ctypes: 22.05 kHz samples plus a phoneme event for every phone.

The espeak-ng command line writes audio but cannot report when each phone starts; the library
can (``espeakEVENT_PHONEME``, with the sample index at which the phone begins).

The library keeps state from one sentence to the next (its output for a sentence changes by a
few samples with what was spoken before), so a corpus renders each sentence in a fresh process:
``python -I -S espeak_lib.py VOICE OUT.wav < text`` writes the wav and prints the phone starts as
JSON. The module imports only the standard library so that this start-up stays ~20 ms; it also
keeps a crash inside the library away from the caller.

Constants follow ``speak_lib.h`` of espeak-ng 1.51.
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
import wave
from dataclasses import dataclass

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_EE_OK = 0
SILENCE = "_"  # espeak reports pauses as phoneme events with an empty name
EXIT_UNKNOWN_VOICE = 2
EXIT_NO_LIBRARY = 3


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int), ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class EspeakOutput:
    """pcm: 16-bit little-endian mono bytes at ``sample_rate_hz``; phones: ``[(ipa, start
    sample)]`` in order, pauses named ``SILENCE``."""

    pcm: bytes
    sample_rate_hz: int
    phones: list[tuple[str, int]]


class EspeakLibrary:
    """An initialised libespeak-ng (one per process: the library is a singleton inside).

    >>> out = EspeakLibrary().synthesize("en-us", "Hi.")   # doctest: +SKIP
    >>> out.sample_rate_hz                                  # doctest: +SKIP
    22050
    """

    def __init__(self, soname: str = "libespeak-ng.so.1"):
        self._lib = ctypes.CDLL(soname)
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        self.sample_rate_hz = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options
        )
        if self.sample_rate_hz <= 0:
            raise OSError("espeak_Initialize failed (espeak-ng-data missing?)")
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        self._chunks: list[bytes] = []
        self._phones: list[tuple[str, int]] = []
        self._callback = _Callback(self._on_audio)  # kept referenced for the library's lifetime
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def _on_audio(self, wave, num_samples, events) -> int:
        if wave and num_samples > 0:
            self._chunks.append(ctypes.string_at(wave, num_samples * 2))
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._phones.append((name or SILENCE, int(event.sample)))
            index += 1
        return 0

    def synthesize(self, voice: str, text: str) -> EspeakOutput:
        """Speak ``text`` with ``voice`` (``en-us``, ``en-us+f3``, ...). Raises LookupError for a
        voice espeak cannot load and RuntimeError when synthesis fails."""
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            self._chunks, self._phones = [], []
            if self._lib.espeak_SetVoiceByName(voice.encode("utf-8")) != _EE_OK:
                raise LookupError(voice)
            status = self._lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
            )
            self._lib.espeak_Synchronize()
            if status != _EE_OK:
                raise RuntimeError(f"espeak_Synth returned {status}")
            return EspeakOutput(b"".join(self._chunks), self.sample_rate_hz, self._phones)


def phone_segments(phones: list[tuple[str, int]], total_samples: int, sample_rate_hz: int
                   ) -> list[list]:
    """``[[phone, start_s, end_s], ...]`` from phone start samples: each phone ends where the
    next begins; the leading silence becomes a pause; repeated pauses merge; empty ones drop.

    >>> phone_segments([("h", 100), ("i", 200), ("_", 300), ("_", 300)], 400, 100)
    [['_', 0.0, 1.0], ['h', 1.0, 2.0], ['i', 2.0, 3.0], ['_', 3.0, 4.0]]
    """
    marks = [(SILENCE, 0)] + [(name, min(max(s, 0), total_samples)) for name, s in phones]
    segments: list[list] = []
    for (name, start), (_, end) in zip(marks, marks[1:] + [(SILENCE, total_samples)], strict=True):
        if end <= start:
            continue
        if segments and name == SILENCE and segments[-1][0] == SILENCE:
            segments[-1][2] = end
            continue
        segments.append([name, start, end])
    return [[n, round(s / sample_rate_hz, 4), round(e / sample_rate_hz, 4)] for n, s, e in segments]


def main(argv: list[str]) -> int:
    """``espeak_lib.py VOICE OUT.wav``, text on stdin (UTF-8): write the wav, print
    ``{"sample_rate_hz", "num_samples", "phones": [[ipa, start_sample], ...]}``."""
    voice, out_wav = argv
    text = sys.stdin.buffer.read().decode("utf-8")
    try:
        lib = EspeakLibrary()
    except OSError as exc:
        print(f"libespeak-ng unavailable: {exc}", file=sys.stderr)
        return EXIT_NO_LIBRARY
    try:
        out = lib.synthesize(voice, text)
    except LookupError:
        print(f"libespeak-ng cannot load voice {voice!r}", file=sys.stderr)
        return EXIT_UNKNOWN_VOICE
    with wave.open(out_wav, "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(out.sample_rate_hz)
        fh.writeframes(out.pcm)
    json.dump({"sample_rate_hz": out.sample_rate_hz, "num_samples": len(out.pcm) // 2,
               "phones": out.phones}, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
