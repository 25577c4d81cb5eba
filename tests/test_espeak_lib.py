"""espeak-ng in process (adavoice.text.espeak_lib) gives exactly the command's phonemes."""

from __future__ import annotations

import threading

import pytest

from adavoice.errors import UnknownVoiceError
from adavoice.text import espeak_lib
from adavoice.text.tokenize import _library_phonemes, _run_espeak

SAMPLES = {
    "en-us": ["and", "and he", "it's him", "You", "Hello there how are you today",
              "The birch canoe slid on the smooth planks", "Dr Smith paid 42 dollars",
              "I read it yesterday but I will read it again tomorrow", "Up against the net"],
    "cs": ["Mám tři koně", "Příliš žluťoučký kůň úpěl ďábelské ódy", "a"],
    "it": ["Usare Shift e PageUp", "Nel mezzo del cammin di nostra vita", "e"],
}


@pytest.fixture(scope="module")
def lib():
    loaded = espeak_lib.library()
    if loaded is None:
        pytest.skip("libespeak-ng is not loadable here (the command is used)")
    return loaded


@pytest.mark.parametrize("voice", sorted(SAMPLES))
def test_library_equals_the_command(lib, voice):
    for text in SAMPLES[voice]:
        assert _library_phonemes(lib, text, voice) == _run_espeak(text, voice), text


def test_unknown_voice_is_typed(lib):
    with pytest.raises(UnknownVoiceError):
        _library_phonemes(lib, "hello", "no-such-voice")
    assert _library_phonemes(lib, "hello", "en-us").strip()  # and the next call still works


def test_threads_get_their_own_phonemes(lib):
    jobs = [(text, voice) for voice, texts in SAMPLES.items() for text in texts] * 3
    serial = [_library_phonemes(lib, text, voice) for text, voice in jobs]
    results = [None] * len(jobs)

    def work(index):
        results[index] = _library_phonemes(lib, *jobs[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == serial


def test_command_can_be_forced(monkeypatch):
    monkeypatch.setenv("ADAVOICE_ESPEAK", "command")
    assert espeak_lib.library() is None
