"""espeak-ng in this process, through its C library (``libespeak-ng.so.1``), for the phoneme
tokenizer: the very output of the ``espeak-ng -q --ipa --sep=_`` command, which prints the
phoneme trace of a synthesis (``espeak_TextToPhonemes`` differs from it: it leaves a lone
short word unstressed, 15 of 1,150 clauses), without a process start per text: ~1.3 ms a
sentence instead of ~11 ms, which was as much as the acoustic model's whole pass.

The library keeps global state, so calls are serialised with a lock. Where the library cannot
be loaded (another platform, a partial install), :func:`library` returns None and the tokenizer
runs the command as before; ``ADAVOICE_ESPEAK=command`` forces the command.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT AUDIO_OUTPUT_SYNCHRONOUS: no audio device is opened
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02
_POS_CHARACTER = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
_NAMES = ("libespeak-ng.so.1", "libespeak-ng.so", "libespeak-ng.1.dylib")


class EspeakLibrary:
    """One loaded, initialised library; :meth:`phonemize` is thread-safe."""

    def __init__(self, lib: ctypes.CDLL, libc: ctypes.CDLL):
        self._lib, self._libc = lib, libc
        self._lock = threading.Lock()
        self._voice: str | None = None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetPhonemeTrace.argtypes = [ctypes.c_int, ctypes.c_void_p]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        libc.open_memstream.restype = ctypes.c_void_p
        libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                        ctypes.POINTER(ctypes.c_size_t)]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.free.argtypes = [ctypes.c_void_p]
        if lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0) <= 0:
            raise OSError("espeak_Initialize failed")
        # the samples espeak-ng makes while it traces are dropped (the command's -q)
        self._callback = _SYNTH_CALLBACK(lambda wave, samples, events: 0)
        lib.espeak_SetSynthCallback(self._callback)

    def phonemize(self, text: str, voice: str, separator: str) -> str | None:
        """What ``espeak-ng -q -b 1 --ipa --sep=SEPARATOR -v VOICE`` prints for ``text``
        (the same library call: the phoneme trace of a synthesis whose audio is dropped);
        None when espeak-ng has no voice ``voice``."""
        data = text.encode("utf-8") + b"\0"
        buffer, size = ctypes.c_void_p(), ctypes.c_size_t()
        with self._lock:
            if voice != self._voice:
                if self._lib.espeak_SetVoiceByName(voice.encode("utf-8")) != 0:
                    self._voice = None
                    return None
                self._voice = voice
            stream = self._libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
            if not stream:
                raise OSError("open_memstream failed")
            try:
                self._lib.espeak_SetPhonemeTrace(_PHONEMES_IPA | (ord(separator) << 8), stream)
                self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                       None, None)
                self._lib.espeak_Synchronize()
            finally:
                self._lib.espeak_SetPhonemeTrace(0, None)
                self._libc.fclose(stream)
            try:
                return ctypes.string_at(buffer, size.value).decode("utf-8", "replace")
            finally:
                self._libc.free(buffer)


_LOADED: list = []  # [EspeakLibrary | None], filled once
_LOAD_LOCK = threading.Lock()


def library() -> EspeakLibrary | None:
    """The process's espeak-ng library, loaded on first use; None where it cannot be."""
    if os.environ.get("ADAVOICE_ESPEAK", "").lower() == "command":
        return None
    with _LOAD_LOCK:
        if not _LOADED:
            _LOADED.append(_load())
    return _LOADED[0]


def _load() -> EspeakLibrary | None:
    found = ctypes.util.find_library("espeak-ng")
    libc_name = ctypes.util.find_library("c")
    for name in ((found,) if found else ()) + _NAMES:
        try:
            return EspeakLibrary(ctypes.CDLL(name), ctypes.CDLL(libc_name))
        except (OSError, AttributeError, TypeError):
            continue
    return None
