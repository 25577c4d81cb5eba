"""Voices of the installed speech engines, named by a SPEC ``engine:voice[@sox effects]``.

``espeak:en-us+f3``, ``flite:rms``, ``festival:kal_diphone`` and ``flite:rms@speed 1.12 tempo
0.893`` (sox effects make pseudo-speakers; only effects that transform audio are allowed, see
:mod:`adavoice.data.corpus.sox_effects`). :func:`render` speaks one text into a 22050 Hz mono
16-bit WAV and returns the engine's phone timings when it gives them:

- espeak: libespeak-ng phoneme events (IPA names, pauses ``_``); the ``espeak-ng`` command is
  the fallback when the library cannot load (no timings then);
- flite: ``-psdur`` phone end times (pauses ``pau``);
- festival: the ``Segment`` relation's end times (pauses ``pau`` or ``#``).

Timings are ``[[phone, start_s, end_s], ...]``. Effects that stretch time uniformly (``speed``,
``tempo``, ``stretch``) scale them by duration_out / duration_in; effects that shift or add
audio (``pad``, ``trim``, ``echo``, ...) drop them, since they no longer match.

>>> spec = EngineVoice.parse("flite:rms@speed 1.12 tempo 0.893")
>>> spec.engine, spec.voice, spec.effects
('flite', 'rms', ('speed', '1.12', 'tempo', '0.893'))
>>> str(spec)
'flite:rms@speed 1.12 tempo 0.893'
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from adavoice.atomic import atomic_path
from adavoice.data.corpus.sox_effects import ALLOWED_EFFECTS, refused_word, require_sox
from adavoice.errors import EngineError, UnknownEngineError, UnknownVoiceError

SAMPLE_RATE_HZ = 22050
ENGINES = ("espeak", "flite", "festival")
ENGINE_COMMANDS = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}
ENGINE_TIMEOUT_S = 120
FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")
# Festival reads its input as bytes in the voice's own 8-bit encoding.
FESTIVAL_ENCODINGS = {"czech": "iso-8859-2", "italian": "latin-1", "finnish": "latin-1",
                      "catalan": "latin-1", "spanish": "latin-1"}
# sox effects after which the phone timings still hold once scaled by the duration ratio.
TIME_LINEAR_EFFECTS = frozenset(
    "speed tempo stretch pitch rate gain vol norm equalizer bass treble highpass lowpass "
    "bandpass bandreject band sinc dither channels remix reverb tremolo overdrive flanger "
    "phaser compand contrast dcshift loudness riaa deemph downsample upsample".split()
)
_LIST_FIXES = {
    "espeak": "list voices with `espeak-ng --voices`, variants with `espeak-ng --voices=variant`",
    "flite": "list voices with `flite -lv`",
    "festival": "list voices with `echo '(print (voice.list))' | festival --pipe`",
}


@dataclass(frozen=True)
class EngineVoice:
    """A parsed ``engine:voice[@effects]``; ``str(spec)`` is the speaker id of the manifest.

    >>> EngineVoice.parse("espeak:en-us+f3").slug
    'espeak-en-us+f3'
    """

    engine: str
    voice: str
    effects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse sox effects that could read or write files, however the spec was made (they
        would run on validation already); the rule is :mod:`adavoice.data.corpus.sox_effects`."""
        word = refused_word(self.effects)
        if word is not None:
            raise UnknownVoiceError(
                f"voice spec {str(self)!r}: {word!r} is not an allowed sox effect or effect "
                "argument (paths and effects that read or write files are refused)",
                fix=f"use effects that transform audio: {', '.join(sorted(ALLOWED_EFFECTS))}",
            )

    @classmethod
    def parse(cls, spec: str) -> "EngineVoice":
        """Raise UnknownEngineError for an engine other than espeak, flite, festival and
        UnknownVoiceError for a malformed spec (voice existence is :func:`check_voice`'s job)."""
        head, _, effects = str(spec).strip().partition("@")
        engine, sep, voice = head.partition(":")
        engine, voice = engine.strip().lower(), voice.strip()
        if not sep or not engine:
            raise UnknownVoiceError(
                f"voice spec {spec!r} is not engine:voice[@effects]",
                fix="write it like espeak:en-us, flite:rms or flite:rms@speed 1.12",
            )
        if engine not in ENGINES:
            raise UnknownEngineError(f"voice spec {spec!r} names unknown engine {engine!r}",
                                     fix=f"use one of {', '.join(ENGINES)}, e.g. espeak:en-us")
        if not voice or any(ch.isspace() for ch in voice):
            raise UnknownVoiceError(f"voice spec {spec!r} has no valid voice name",
                                    fix=_LIST_FIXES[engine])
        if "@" in spec and not effects.strip():
            raise UnknownVoiceError(f"voice spec {spec!r} has '@' but no sox effects",
                                    fix="drop the '@' or add effects, e.g. @pitch -300")
        try:
            effect_words = tuple(shlex.split(effects))
        except ValueError as exc:
            raise UnknownVoiceError(f"voice spec {spec!r} has unbalanced quotes ({exc})",
                                    fix="quote sox effect arguments in pairs") from exc
        return cls(engine, voice, effect_words)

    def __str__(self) -> str:
        base = f"{self.engine}:{self.voice}"
        return f"{base}@{shlex.join(self.effects)}" if self.effects else base

    @property
    def slug(self) -> str:
        """File-name-safe, unique name: readable part plus, with effects, a hash of the spec."""
        readable = re.sub(r"[^A-Za-z0-9.+_-]+", "-", f"{self.engine}-{self.voice}").strip("-")
        if not self.effects:
            return readable
        effects = re.sub(r"[^A-Za-z0-9.+_-]+", "-", " ".join(self.effects)).strip("-")[:40]
        return f"{readable}@{effects}-{hashlib.sha1(str(self).encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class Rendering:
    """What :func:`render` wrote: duration of the 22050 Hz file and the phone timings
    (``[[phone, start_s, end_s], ...]``) or None when the engine or effects give none."""

    duration_s: float
    alignment: list | None


def as_spec(spec: EngineVoice | str) -> EngineVoice:
    return spec if isinstance(spec, EngineVoice) else EngineVoice.parse(spec)


def _engine_error(spec: EngineVoice | str, message: str, fix: str | None = None) -> EngineError:
    fix = fix or "run the engine by hand on this text to see why; a re-run of the build retries it"
    return EngineError(f"voice {str(spec)!r}: {message}", fix=fix)


def _require_command(engine: str) -> str:
    command = shutil.which(ENGINE_COMMANDS[engine])
    if command is None:
        raise EngineError(f"{ENGINE_COMMANDS[engine]} is not installed",
                          fix="install the speech engines with `make install-system`")
    return command


def _run(spec: EngineVoice | str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run an engine in its own session: Ctrl-C reaches only Python, which lets running
    renders finish (sox, interrupted, exits 0 with a truncated file)."""
    try:
        return subprocess.run(args, capture_output=True, timeout=ENGINE_TIMEOUT_S,
                              start_new_session=True, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise _engine_error(spec, f"{args[0]} ran over {ENGINE_TIMEOUT_S} s") from exc
    except OSError as exc:
        raise _engine_error(spec, f"cannot run {args[0]} ({exc})") from exc


@functools.lru_cache(maxsize=None)
def list_voices(engine: str) -> frozenset[str]:
    """Voice names the engine accepts (espeak: languages, names and files; variants apart)."""
    command = _require_command(engine)
    if engine == "flite":
        out = _run(engine, [command, "-lv"]).stdout.decode("utf-8", "replace")
        return frozenset(out.split(":", 1)[-1].split())
    if engine == "festival":
        out = _run(engine, [command, "--pipe"], input=b"(print (voice.list))\n").stdout
        return frozenset(re.findall(r"[A-Za-z0-9_]+", out.decode("latin-1")))
    return frozenset(espeak_voice_files())


@functools.lru_cache(maxsize=None)
def espeak_voice_files() -> dict[str, str]:
    """espeak voice name -> voice file (``en-gb`` -> ``gmw/en``). The library loads voices by
    file; only the command line falls back to a search by language, so names are resolved here.
    Accepted names: language codes, voice names, files, and the "other languages" codes (for
    those, the voice that lists the code with the best priority)."""
    command = _require_command("espeak")
    lines = _run("espeak", [command, "--voices"]).stdout.decode("utf-8", "replace").splitlines()
    files: dict[str, str] = {}
    others: dict[str, tuple[int, str]] = {}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 5 or fields[4].startswith("mb/"):
            continue  # mbrola voices need the mbrola program, which is not installed
        for name in (fields[1], fields[3], fields[4], fields[4].rsplit("/", 1)[-1]):
            files.setdefault(name, fields[4])
        for code, priority in re.findall(r"\(([^\s()]+) (\d+)\)", line):
            if code not in others or int(priority) < others[code][0]:
                others[code] = (int(priority), fields[4])
    for code, (_, file) in others.items():
        files.setdefault(code, file)
    return files


@functools.lru_cache(maxsize=None)
def list_espeak_variants() -> frozenset[str]:
    """Variant names for ``voice+variant`` (``f3``, ``m3``, ``klatt``, ``Alex``, ...)."""
    out = _run("espeak", [_require_command("espeak"), "--voices=variant"]).stdout
    fields = [line.split() for line in out.decode("utf-8", "replace").splitlines()[1:]]
    return frozenset(f[4].rsplit("/", 1)[-1] for f in fields if len(f) >= 5)


def check_voice(spec: EngineVoice | str) -> EngineVoice:
    """Parse and verify a spec: engine installed, voice (and variant) known, sox effects valid.
    Raises UnknownEngineError, UnknownVoiceError or EngineError naming the spec and the fix."""
    return _check_parsed(as_spec(spec))


@functools.lru_cache(maxsize=None)
def _check_parsed(spec: EngineVoice) -> EngineVoice:
    voice, variant = spec.voice, ""
    if spec.engine == "espeak":  # espeak voices take a variant: en-us+f3
        voice, _, variant = spec.voice.partition("+")
    if voice not in list_voices(spec.engine):
        raise UnknownVoiceError(f"voice spec {str(spec)!r}: {spec.engine} has no voice {voice!r}",
                                fix=_LIST_FIXES[spec.engine])
    if variant and variant not in list_espeak_variants():
        raise UnknownVoiceError(f"voice spec {str(spec)!r}: espeak has no variant {variant!r}",
                                fix="list variants with `espeak-ng --voices=variant`")
    if spec.effects:
        _check_effects(spec)
    return spec


def _check_effects(spec: EngineVoice) -> None:
    sox = require_sox()
    # `gain 0` ends the synth effect's argument list, so sox parses the user's effects as effects
    args = [sox, "-V1", "-n", "-n", "synth", "0.1", "sine", "300", "gain", "0", *spec.effects]
    result = _run(spec, args)
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
        raise UnknownVoiceError(
            f"voice spec {str(spec)!r}: sox rejects the effects {' '.join(spec.effects)!r} "
            f"({reason[0] if reason else 'exit ' + str(result.returncode)})",
            fix="write effects as sox takes them after the output file, e.g. @pitch -300",
        )


def render(spec: EngineVoice | str, text: str, out_wav: str | Path) -> Rendering:
    """Speak ``text`` into ``out_wav`` (22050 Hz mono PCM-16), written atomically: the file
    appears complete or not at all. Raises what :func:`check_voice` raises, and EngineError
    when the engine or sox fails."""
    spec, out_wav = check_voice(spec), Path(out_wav)
    with tempfile.TemporaryDirectory(prefix="adavoice-render-") as tmp:
        raw = Path(tmp) / "raw.wav"
        alignment = _RENDERERS[spec.engine](spec, text, raw, Path(tmp))
        return _finish(spec, raw, out_wav, alignment)


def _render_espeak(spec: EngineVoice, text: str, raw: Path, tmp: Path) -> list | None:
    from adavoice.data.corpus import espeak_lib

    name, plus, variant = spec.voice.partition("+")
    voice_file = espeak_voice_files().get(name, name) + plus + variant
    helper = [sys.executable, "-I", "-S", espeak_lib.__file__, voice_file, str(raw)]
    result = _run(spec, helper, input=text.encode("utf-8"))
    if result.returncode == espeak_lib.EXIT_NO_LIBRARY:  # the command speaks, without timings
        text_file = tmp / "text.txt"
        text_file.write_text(text, encoding="utf-8")
        args = [_require_command("espeak"), "-v", spec.voice, "-b", "1", "-f", str(text_file),
                "-w", str(raw)]
        _check_result(spec, _run(spec, args), raw)
        return None
    if result.returncode == espeak_lib.EXIT_UNKNOWN_VOICE:
        raise _engine_error(spec, "libespeak-ng cannot load this voice",
                            fix="list voices with `espeak-ng --voices`")
    _check_result(spec, result, raw)
    info = json.loads(result.stdout.decode("utf-8"))
    return espeak_lib.phone_segments([tuple(p) for p in info["phones"]], info["num_samples"],
                                     info["sample_rate_hz"])


def _render_flite(spec: EngineVoice, text: str, raw: Path, tmp: Path) -> list | None:
    args = [_require_command("flite"), "-voice", spec.voice, "-psdur", "-t", _ascii(text),
            "-o", str(raw)]
    result = _check_result(spec, _run(spec, args), raw)
    ends = re.findall(r"(\S+):([0-9]+(?:\.[0-9]+)?)", result.stdout.decode("utf-8", "replace"))
    return _segments_from_ends([(name, float(end)) for name, end in ends])


def _render_festival(spec: EngineVoice, text: str, raw: Path, tmp: Path) -> list | None:
    encoding = festival_encoding(spec.voice)
    script = "\n".join([
        f"(voice_{spec.voice})",
        f'(set! adavoice_utt (Utterance Text "{_scheme_string(_encodable(text, encoding))}"))',
        "(utt.synth adavoice_utt)",
        f'(utt.save.wave adavoice_utt "{_scheme_string(str(raw))}" \'riff)',
        "(mapcar (lambda (seg) (format t \"ADAVOICE_SEG %s %f\\n\" (item.name seg) "
        "(item.feat seg \"end\"))) (utt.relation.items adavoice_utt 'Segment))",
        "",
    ])
    script_file = tmp / "speak.scm"
    script_file.write_bytes(script.encode(encoding))
    result = _check_result(spec, _run(spec, [_require_command("festival"), "--batch",
                                              str(script_file)]), raw)
    lines = result.stdout.decode(encoding, "replace").splitlines()
    ends = [line.split()[1:3] for line in lines if line.startswith("ADAVOICE_SEG ")]
    return _segments_from_ends([(name, float(end)) for name, end in ends])


_RENDERERS = {"espeak": _render_espeak, "flite": _render_flite, "festival": _render_festival}


@functools.lru_cache(maxsize=None)
def festival_encoding(voice: str) -> str:
    """The 8-bit encoding festival expects for a voice, from its language folder
    (``/usr/share/festival/voices/<language>/<voice>``); Latin-1 when unknown."""
    for language_dir in FESTIVAL_VOICE_ROOT.glob(f"*/{voice}"):
        return FESTIVAL_ENCODINGS.get(language_dir.parent.name, "latin-1")
    return "latin-1"


def _encodable(text: str, encoding: str) -> str:
    """``text`` with characters the encoding lacks replaced by their unaccented base letter."""
    out = []
    for ch in text:
        try:
            ch.encode(encoding)
            out.append(ch)
        except UnicodeEncodeError:
            out.append(_ascii(ch))
    return "".join(out)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _scheme_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _check_result(spec: EngineVoice, result: subprocess.CompletedProcess, raw: Path):
    errors = result.stderr.decode("utf-8", "replace") + result.stdout.decode("latin-1")[-2000:]
    failed = result.returncode != 0 or "SIOD ERROR" in errors
    if failed or not raw.is_file() or raw.stat().st_size <= 44:
        detail = " ".join(errors.split())[-300:] or f"exit {result.returncode}, no audio"
        raise _engine_error(spec, f"{Path(result.args[0]).name} failed: {detail}")
    return result


def _segments_from_ends(ends: list[tuple[str, float]]) -> list | None:
    """Phone end times -> ``[[phone, start_s, end_s], ...]``; each starts where the last ended."""
    segments, start = [], 0.0
    for name, end in ends:
        if end > start:
            segments.append([name, round(start, 4), round(end, 4)])
            start = end
    return segments or None


def _finish(spec: EngineVoice, raw: Path, out_wav: Path, alignment: list | None) -> Rendering:
    """sox: effects, 22050 Hz, mono, 16-bit (no dither, repeatable), into a temporary file that
    replaces ``out_wav`` only when sox succeeded (:func:`adavoice.atomic.atomic_path`)."""
    import soundfile as sf

    out_wav.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_wav, "audio") as part:
        args = [require_sox(), "-R", "-D", "-G", "-V1", str(raw), "-t", "wav", "-r",
                str(SAMPLE_RATE_HZ), "-c", "1", "-b", "16", "-e", "signed-integer", str(part),
                *spec.effects, "rate", "-h", str(SAMPLE_RATE_HZ)]
        result = _run(spec, args)
        if result.returncode != 0 or not part.is_file() or part.stat().st_size == 0:
            detail = " ".join(result.stderr.decode("utf-8", "replace").split())[-300:]
            raise _engine_error(spec, f"sox failed: {detail}")
        duration_in_s = sf.info(str(raw)).duration
        duration_s = sf.info(str(part)).duration
        if duration_s <= 0 or duration_in_s <= 0:
            raise _engine_error(spec, "sox wrote no audio")
    return Rendering(duration_s, _fit_alignment(spec, alignment, duration_s / duration_in_s,
                                                duration_s))


def _fit_alignment(spec: EngineVoice, alignment: list | None, scale: float, duration_s: float
                   ) -> list | None:
    """Scale timings by the effects' time stretch and clip them to the audio; None when an
    effect moves audio in a way a scale cannot follow."""
    if alignment is None or any(
        word.isalpha() and word not in TIME_LINEAR_EFFECTS for word in spec.effects
    ):
        return None
    fitted = []
    for name, start, end in alignment:
        start, end = min(start * scale, duration_s), min(end * scale, duration_s)
        if end > start:
            fitted.append([name, round(start, 4), round(end, 4)])
    return fitted or None
