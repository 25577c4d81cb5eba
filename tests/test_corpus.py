"""Synthetic corpora: voice specs, engines, text sources, the resumable build and its CLI."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from adavoice.data.corpus import build as corpus_build
from adavoice.data.corpus import text_sources, voices
from adavoice.data.corpus.build import build_corpus, plan_corpus
from adavoice.data.corpus.sox_effects import ALLOWED_EFFECTS, EFFECT_KEYWORDS
from adavoice.data.corpus.voices import EngineVoice, check_voice, render
from adavoice.data.manifest import Manifest, Utterance
from adavoice.errors import (
    EngineError,
    OutputError,
    UnknownEngineError,
    UnknownLanguageError,
    UnknownVoiceError,
)

REPO = Path(__file__).resolve().parents[1]

# CI installs the engines (make install-system): there a missing engine must fail, not skip
needs_engines = pytest.mark.skipif(
    not os.environ.get("CI")
    and not all(shutil.which(c) for c in ("espeak-ng", "flite", "festival", "sox")),
    reason="speech engines missing: run `make install-system`",
)


# ----------------------------------------------------------------------------- voice specs
@pytest.mark.parametrize("text, engine, voice, effects, canonical", [
    ("espeak:en-us", "espeak", "en-us", (), "espeak:en-us"),
    ("espeak:en-us+f3", "espeak", "en-us+f3", (), "espeak:en-us+f3"),
    ("flite:rms", "flite", "rms", (), "flite:rms"),
    ("festival:kal_diphone", "festival", "kal_diphone", (), "festival:kal_diphone"),
    ("flite:rms@speed 1.12 tempo 0.893", "flite", "rms", ("speed", "1.12", "tempo", "0.893"),
     "flite:rms@speed 1.12 tempo 0.893"),
    ("espeak:en-gb@pitch -300", "espeak", "en-gb", ("pitch", "-300"), "espeak:en-gb@pitch -300"),
    (" FLITE:kal16 ", "flite", "kal16", (), "flite:kal16"),
])
def test_spec_parse(text, engine, voice, effects, canonical):
    spec = EngineVoice.parse(text)
    assert (spec.engine, spec.voice, spec.effects, str(spec)) == (engine, voice, effects, canonical)
    assert EngineVoice.parse(str(spec)) == spec


@pytest.mark.parametrize("text, error", [
    ("mbrola:us1", UnknownEngineError),
    ("en-us", UnknownVoiceError),
    ("espeak:", UnknownVoiceError),
    (":en-us", UnknownVoiceError),
    ("flite:rms@", UnknownVoiceError),
    ("flite:rms@pitch '300", UnknownVoiceError),
])
def test_spec_parse_errors(text, error):
    with pytest.raises(error) as info:
        EngineVoice.parse(text)
    assert repr(text) in str(info.value) and "(fix: " in str(info.value)


def test_slugs_are_unique_and_file_safe():
    specs = ["flite:rms@pitch -300", "flite:rms@pitch 300", "flite:rms", "espeak:en-us+f3"]
    slugs = [EngineVoice.parse(s).slug for s in specs]
    assert len(set(slugs)) == len(slugs)
    assert all("/" not in s and " " not in s and ":" not in s for s in slugs)


@needs_engines
@pytest.mark.parametrize("text, error, words", [
    ("nosuch:voice", UnknownEngineError, ["espeak, flite, festival"]),
    ("espeak:xx-nosuch", UnknownVoiceError, ["espeak-ng --voices"]),
    ("espeak:en-us+nosuchvariant", UnknownVoiceError, ["--voices=variant"]),
    ("flite:nosuch", UnknownVoiceError, ["flite -lv"]),
    ("festival:nosuch_diphone", UnknownVoiceError, ["voice.list"]),
    ("flite:rms@bogus 1", UnknownVoiceError, ["sox"]),
])
def test_unknown_engine_and_voice(text, error, words):
    with pytest.raises(error) as info:
        check_voice(text)
    assert repr(text) in str(info.value)
    assert all(w in str(info.value) for w in words)


def test_missing_engine_is_engine_error(monkeypatch):
    monkeypatch.setitem(voices.ENGINE_COMMANDS, "flite", "no-such-flite-binary")
    voices.list_voices.cache_clear()
    try:
        with pytest.raises(EngineError, match="make install-system"):
            voices.list_voices("flite")
    finally:
        voices.list_voices.cache_clear()


@needs_engines
def test_engine_failure_is_engine_error(tmp_path, monkeypatch):
    # festival dies when the voice function is missing: bypass the check to reach the engine
    monkeypatch.setattr(voices, "check_voice", lambda spec: voices.as_spec(spec))
    with pytest.raises(EngineError) as info:
        render("festival:nosuch_diphone", "Hello there, friend.", tmp_path / "x.wav")
    assert "festival:nosuch_diphone" in str(info.value)
    assert not (tmp_path / "x.wav").exists()


# ----------------------------------------------------------------------------- sox effects
def _specs_in_use() -> list[str]:
    """The voice SPECs of benchmarks/base_voices.txt and of the Makefile's corpus targets."""
    specs = shlex.split((REPO / "benchmarks" / "base_voices.txt").read_text(encoding="utf-8"))
    for line in (REPO / "Makefile").read_text(encoding="utf-8").splitlines():
        if "--voices" in line and "$(" not in line:
            specs += shlex.split(line.split("--voices", 1)[1])
    return specs


# common sox syntax the rule must let through (each checked against sox below)
ACCEPTED_EFFECTS = [
    "gain -n -3", "vol -6dB", "vol 0.5 amplitude", "remix 1v0.5", "fade q 0.01 0 0.01",
    "flanger 0 2 0 71 0.5 sine 25 linear", "reverb --wet-only 50", "sinc 3k-8k",
    "compand 0.3,1 6:-70,-60,-20 -5 -90 0.2", "pad 0.05@0", "trim 0 0.05", "equalizer 1k 2q -3",
    "highpass -2 300 0.7q", "speed 2c", "tempo -s 0.9", "pitch -q 100", "rate -v 16k",
    "silence 1 0.01 1%", "chorus 0.7 0.9 55 0.4 0.25 2 -t", "bend 0,200,0.05", "hilbert -n 101",
    "mcompand '0.005,0.1 -47,-40,-34,-34,-17,-33' 100 '0.003,0.05 -47,-40,-34,-34,-17,-33'",
]


def test_specs_in_use_and_common_effects_parse():
    specs = _specs_in_use()
    assert len(specs) >= 17 and any("@" in spec for spec in specs)
    for text in specs + [f"flite:rms@{effects}" for effects in ACCEPTED_EFFECTS]:
        assert EngineVoice.parse(str(EngineVoice.parse(text))) == EngineVoice.parse(text)


@needs_engines
def test_specs_in_use_and_common_effects_validate():
    for text in _specs_in_use() + [f"flite:rms@{effects}" for effects in ACCEPTED_EFFECTS]:
        check_voice(text)


@needs_engines
def test_allowed_effects_are_sox_effects_and_keywords_are_not():
    out = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("EFFECTS:"))
    sox_effects = {word.rstrip("*+#").lower() for word in line.split()[1:]}
    assert ALLOWED_EFFECTS <= sox_effects
    assert not EFFECT_KEYWORDS & sox_effects  # a keyword that named an effect would start one


@pytest.mark.parametrize("effects, refused", [
    ("noiseprof {path}", "noiseprof"),
    ("gain 0 noisered {path} 0.2", "noisered"),
    ("gain 0 newfile", "newfile"),
    ("gain 0 restart", "restart"),
    ("fir {path}", "fir"),
    ("gain 0 spectrogram -o {path}", "spectrogram"),
    ("ladspa {path} plugin", "ladspa"),
    ("synth 1 sine 300", "synth"),  # generates sound of any length instead of the voice
    ("GAIN 0 NoiseProf {path}", "NoiseProf"),  # sox matches effect names in any case
    ("gain -n {path}", "{path}"),
    ("gain 0 : noiseprof {path}", ":"),  # sox's effect-chain separator
    ("gain '0 noiseprof'", "0 noiseprof"),
    ("gain 0 stats", "stats"),
])
def test_effects_that_could_touch_files_are_refused(tmp_path, effects, refused):
    written = tmp_path / "written-by-sox"
    text = f"flite:rms@{effects.format(path=written)}"
    refused = refused.format(path=written)
    attempts = [EngineVoice.parse, check_voice,
                lambda spec: render(spec, "Hello there.", tmp_path / "a.wav"),
                lambda spec: EngineVoice("flite", "rms", tuple(shlex.split(effects.format(
                    path=written))))]
    for attempt in attempts:
        with pytest.raises(UnknownVoiceError) as info:
            attempt(text)
        message = str(info.value)
        assert repr(refused) in message and "speed, stretch, swap, tempo" in message
        assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- engines
def _assert_timings(alignment, duration_s):
    """Timings start at 0, are contiguous and increasing, and end inside the audio."""
    assert alignment and alignment[0][1] == 0.0
    for (_, start, end), (_, next_start, _) in zip(alignment, alignment[1:], strict=False):
        assert start < end == pytest.approx(next_start, abs=1e-3)
    assert alignment[-1][1] < alignment[-1][2] <= duration_s + 1e-3


@needs_engines
@pytest.mark.parametrize("spec, text, phones", [
    ("flite:kal16", "The quick brown fox.", {"k", "f"}),
    ("festival:kal_diphone", "The quick brown fox.", {"k", "f"}),
    ("espeak:en-us", "The quick brown fox.", {"k", "f"}),
    ("espeak:en-gb+f4", "The quick brown fox.", {"k", "f"}),  # en-gb resolves to gmw/en
    # Italian festival voices read Latin-1 (UTF-8 stops their letter-to-sound rules)
    ("festival:lp_diphone", "Perchè è così bello?", {"E1", "i1"}),
    # Czech festival voices read ISO-8859-2; UTF-8 bytes would be spelled out as junk
    ("festival:czech_dita", "Příliš žluťoučký kůň úpěl ďábelské ódy.", {"z~", "r~*", "t~", "d~"}),
])
def test_render_gives_22050_hz_audio_and_phone_timings(tmp_path, spec, text, phones):
    out = tmp_path / "a.wav"
    result = render(spec, text, out)
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    assert result.duration_s == pytest.approx(info.duration)
    assert 0.8 < result.duration_s < 6.0
    _assert_timings(result.alignment, result.duration_s)
    assert phones <= {p for p, _, _ in result.alignment}


@needs_engines
@pytest.mark.parametrize("voice, encoding", [
    ("czech_dita", "iso-8859-2"), ("lp_diphone", "latin-1"), ("pc_diphone", "latin-1"),
    ("kal_diphone", "latin-1"),
])
def test_festival_encodings(voice, encoding):
    assert voices.festival_encoding(voice) == encoding


@needs_engines
def test_sox_effects_change_audio_and_scale_timings(tmp_path):
    text = "The quick brown fox jumps."
    plain = render("flite:kal16", text, tmp_path / "plain.wav")
    slow = render("flite:kal16@tempo 0.8", text, tmp_path / "slow.wav")
    assert slow.duration_s == pytest.approx(plain.duration_s / 0.8, rel=0.03)
    assert slow.alignment[3][2] == pytest.approx(plain.alignment[3][2] / 0.8, rel=0.03)
    echo = render("flite:kal16@echo 0.8 0.9 100 0.3", text, tmp_path / "echo.wav")
    assert echo.alignment is None  # echo adds a tail that a time scale cannot follow


# ----------------------------------------------------------------------------- text sources
@pytest.mark.parametrize("text, language, expected", [
    ("The cat sat on the mat.", "en", "The cat sat on the mat."),
    ('"Stay," he said, "and rest."', "en", "Stay, he said, and rest."),
    ("Call 555 1234 now please.", "en", None),  # digits
    ("See http://example.com for more.", "en", None),  # URL
    ("Cats sleep.", "en", None),  # 2 words
    (" ".join(["word"] * 21) + ".", "en", None),  # 21 words
    ("THIS IS ALL CAPS TEXT.", "en", None),
    ("x = foo(bar); return x;", "en", None),  # code
    ("no capital at the start.", "en", None),
    ("A sentence without an end", "en", None),
    ("Well said -- John Smith.", "en", None),  # attribution
    ("That was a damn fine cup.", "en", None),  # blocklist
    ("Štěstí tvého žití záleží na myšlenkách.", "cs", "Štěstí tvého žití záleží na myšlenkách."),
    ("Štěstí tvého žití záleží na myšlenkách.", "en", None),  # letters outside English
    ("Perche' e' cosi' bello?", "it", "Perchè è così bello?"),
])
def test_clean_sentence(text, language, expected):
    assert text_sources.clean_sentence(text, language) == expected


def test_fortune_records_drop_attributions_and_tab_layouts(tmp_path):
    path = tmp_path / "fortunes"
    path.write_text("A fine day to stay home.\n\t\t-- Somebody Famous\n%\n"
                    "Name\tValue\nalpha\tbeta\n%\nTwo lines\nof text.\n", encoding="utf-8")
    assert text_sources.read_fortune_records(path) == ["A fine day to stay home.",
                                                       "Two lines of text."]


@pytest.mark.parametrize("language", ["en", "cs", "it"])
def test_loaded_sentences_are_filtered_and_unique(language):
    sentences = text_sources.load_sentences(language)
    assert len(sentences) > 2000
    assert list(sentences) == sorted(sentences)
    assert len({text_sources.normalise(s) for s in sentences}) == len(sentences)
    for s in sentences:
        assert 3 <= len([w for w in s.split() if any(ch.isalpha() for ch in w)]) <= 20
        assert not any(ch.isdigit() for ch in s) and "http" not in s and "\t" not in s


def test_split_is_by_sentence_stable_and_about_five_percent():
    sentences = text_sources.load_sentences("en")
    share = np.mean([text_sources.is_valid_sentence(s) for s in sentences])
    assert 0.04 < share < 0.06
    s = sentences[0]
    assert text_sources.is_valid_sentence(s) == text_sources.is_valid_sentence(s.upper())


def test_plan_shares_valid_text_and_rotates_train_text():
    specs = [EngineVoice.parse(s) for s in ("espeak:en-us", "flite:kal16", "flite:rms")]
    plan = plan_corpus("en", specs, utterances=40, seed=3)
    assert plan == plan_corpus("en", specs, utterances=40, seed=3)
    assert plan != plan_corpus("en", specs, utterances=40, seed=4)
    by_voice = {str(s): [i for i in plan if i.spec == s] for s in specs}
    valid = [{i.text for i in items if i.split == "valid"} for items in by_voice.values()]
    train = [{i.text for i in items if i.split == "train"} for items in by_voice.values()]
    assert valid[0] == valid[1] == valid[2] and len(valid[0]) == 2
    assert all(text_sources.is_valid_sentence(t) for t in valid[0])
    assert not (train[0] & train[1]) and not (train[1] & train[2])
    assert len({i.id for i in plan}) == len(plan) == 120


def test_unknown_language(tmp_path):
    with pytest.raises(UnknownLanguageError):
        build_corpus(tmp_path, "xx", ["espeak:en-us"], 2, progress=False)


# ----------------------------------------------------------------------------- the build
def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in [folder, *folder.rglob("*")]}


@needs_engines
def test_must_show_cli_build_then_rerun_changes_nothing(tmp_path):
    from typer.testing import CliRunner

    from adavoice.cli.corpus import app

    out = tmp_path / "c"
    args = ["build", str(out), "--language", "en", "--voices", "espeak:en-us", "flite:kal16",
            "--utterances", "5", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(out)
    assert len(manifest) == 10 and manifest.speakers == ["espeak:en-us", "flite:kal16"]
    for utt in manifest:
        info = sf.info(str(manifest.audio_path(utt)))
        assert info.samplerate == 22050 and info.channels == 1
        assert utt.duration_s == pytest.approx(info.duration, abs=1e-3)
        assert utt.extra["split"] in ("train", "valid") and utt.extra["engine"] in utt.speaker
        assert utt.language == "en" and utt.audio.startswith("wavs/")
        _assert_timings(utt.alignment, utt.duration_s)
    assert {u.text for u in manifest.split("valid").filter(speaker="espeak:en-us")} == {
        u.text for u in manifest.split("valid").filter(speaker="flite:kal16")}
    before = _mtimes(out)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _mtimes(out) == before


@needs_engines
def test_same_seed_same_corpus(tmp_path):
    a = build_corpus(tmp_path / "a", "en", ["espeak:en-us+f3"], 2, seed=7, progress=False)
    b = build_corpus(tmp_path / "b", "en", ["espeak:en-us+f3"], 2, seed=7, progress=False)
    manifests = [(tmp_path / name / "manifest.jsonl").read_bytes() for name in ("a", "b")]
    assert manifests[0] == manifests[1]
    for ua, ub in zip(a, b, strict=True):
        assert a.audio_path(ua).read_bytes() == b.audio_path(ub).read_bytes()


@needs_engines
def test_effect_voice_keeps_full_spec_as_speaker(tmp_path):
    specs = ["flite:kal16", "flite:kal16@pitch -300"]
    m = build_corpus(tmp_path, "en", specs, 2, progress=False)
    assert m.speakers == sorted(specs)
    plain, shifted = (m.split("valid").filter(speaker=s)[0] for s in specs)
    assert plain.text == shifted.text and shifted.alignment
    a, b = (sf.read(str(m.audio_path(u)))[0] for u in (plain, shifted))
    n = min(len(a), len(b))
    assert not np.allclose(a[:n], b[:n], atol=1e-3)


@needs_engines
def test_failed_build_completes_on_rerun(tmp_path, monkeypatch):
    real_render, calls = voices.render, []

    def flaky(spec, text, out_wav):
        calls.append(text)
        if len(calls) > 3:
            raise EngineError("simulated crash")
        return real_render(spec, text, out_wav)

    monkeypatch.setattr(voices, "render", flaky)
    with pytest.raises(EngineError, match="run the same command again"):
        build_corpus(tmp_path, "en", ["espeak:en-us", "flite:kal16"], 4, workers=1, progress=False)
    assert len(Manifest.load(tmp_path)) == 3
    first = _mtimes(tmp_path / "wavs")
    monkeypatch.setattr(voices, "render", real_render)
    m = build_corpus(tmp_path, "en", ["espeak:en-us", "flite:kal16"], 4, workers=2, progress=False)
    assert len(m) == 8 and len(list((tmp_path / "wavs").rglob("*.wav"))) == 8
    for path, mtime in first.items():  # finished wavs were not rendered again
        if path.endswith(".wav"):
            assert Path(path).stat().st_mtime_ns == mtime
    # a deleted or truncated wav is rendered again, nothing else is
    victim = m.audio_path(m[5])
    victim.write_bytes(victim.read_bytes()[:100])
    before = _mtimes(tmp_path / "wavs")
    m2 = build_corpus(tmp_path, "en", ["espeak:en-us", "flite:kal16"], 4, progress=False)
    changed = [p for p, t in _mtimes(tmp_path / "wavs").items()
               if before.get(p) != t and p.endswith(".wav")]
    assert changed == [str(victim)] and len(m2) == 8
    assert sf.info(str(victim)).duration == pytest.approx(m2[5].duration_s, abs=1e-3)


@needs_engines
def test_ctrl_c_keeps_finished_work(tmp_path, monkeypatch):
    real_render, calls = voices.render, []

    def interrupted(spec, text, out_wav):
        calls.append(text)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # delivered to the main thread, as Ctrl-C is
        return real_render(spec, text, out_wav)

    monkeypatch.setattr(voices, "render", interrupted)
    # a process started in the background by a non-interactive shell ignores SIGINT; give
    # this one the interactive handler so the signal raises KeyboardInterrupt, as Ctrl-C does
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            build_corpus(tmp_path, "en", ["espeak:en-us"], 8, workers=1, progress=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    partial = Manifest.load(tmp_path)
    assert 2 <= len(partial) < 8
    assert not list(tmp_path.rglob("*.part"))
    monkeypatch.setattr(voices, "render", real_render)
    m = build_corpus(tmp_path, "en", ["espeak:en-us"], 8, progress=False)
    assert len(m) == 8
    done = (tmp_path / corpus_build.STATE_DIR / corpus_build.DONE_NAME).read_text().splitlines()
    assert len({json.loads(line)["id"] for line in done}) == 8


@pytest.mark.parametrize("failure, error", [(KeyboardInterrupt(), KeyboardInterrupt),
                                            (OSError(28, "No space left on device"), OutputError)])
@pytest.mark.parametrize("earlier", [False, True])
def test_manifest_is_whole_or_absent_when_its_write_fails(tmp_path, monkeypatch, failure, error,
                                                          earlier):
    items = plan_corpus("en", [EngineVoice.parse("espeak:en-us")], 4)
    done = {item.id: Utterance(id=item.id, audio=item.audio, text=item.text,
                               speaker=str(item.spec), language="en", duration_s=1.0,
                               extra={"split": item.split}).to_dict() for item in items}
    path = tmp_path / "manifest.jsonl"
    if earlier:
        corpus_build._write_manifest(tmp_path, items[:2], done)
    before = path.read_bytes() if earlier else None

    def fail(fd):
        raise failure

    monkeypatch.setattr(os, "fsync", fail)  # the last step before the rename
    with pytest.raises(error):
        corpus_build._write_manifest(tmp_path, items, done)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == (["manifest.jsonl"] if earlier else [])
    assert (path.read_bytes() if earlier else None) == before
    corpus_build._write_manifest(tmp_path, items, done)
    assert len(Manifest.load(tmp_path)) == 4


def _wait_for_records(process: subprocess.Popen, done_log: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while not (done_log.is_file() and done_log.read_text(encoding="utf-8").count("\n") >= count):
        if process.poll() is not None:
            pytest.fail(f"the build ended early: {process.communicate()}")
        assert time.monotonic() < deadline, "the build recorded no utterance in 120 s"
        time.sleep(0.02)


@needs_engines
@pytest.mark.parametrize("signum, exit_code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_the_cli_build_cleanly_and_a_rerun_completes_it(tmp_path, signum,
                                                                     exit_code):
    out, temp = tmp_path / "c", tmp_path / "tmp"
    temp.mkdir()
    utterances, voice = 24, "espeak:en-us"
    # a terminal's Ctrl-C: SIGINT at its default, even when pytest runs in the background
    process = subprocess.Popen(
        [sys.executable, "-m", "adavoice.cli.main", "corpus", "build", str(out), "--language",
         "en", "--voices", voice, "--utterances", str(utterances), "--seed", "0",
         "--no-progress"],
        cwd=REPO, env=dict(os.environ, TMPDIR=str(temp), OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_records(process, out / corpus_build.STATE_DIR / corpus_build.DONE_NAME, 2)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == exit_code, stderr.decode()
    assert "run the same command again" in stderr.decode()
    assert not list(temp.glob("adavoice-render-*")) and not list(out.rglob("*.part"))
    manifest_path = out / "manifest.jsonl"
    if manifest_path.exists():  # whole: every line a row whose wav is there and matches
        lines = manifest_path.read_text(encoding="utf-8").splitlines()
        assert all(json.loads(line)["speaker"] == voice for line in lines)
        partial = Manifest.load(out)
        assert len(partial) < utterances  # stopped before the end
        for utt in partial:
            assert sf.info(str(partial.audio_path(utt))).duration == pytest.approx(
                utt.duration_s, abs=1e-3)
    build_corpus(out, "en", [voice], utterances, seed=0, progress=False)
    fresh = build_corpus(tmp_path / "fresh", "en", [voice], utterances, seed=0, progress=False)
    assert manifest_path.read_bytes() == (tmp_path / "fresh" / "manifest.jsonl").read_bytes()
    for utt in fresh:
        assert (out / utt.audio).read_bytes() == fresh.audio_path(utt).read_bytes()
