"""``python -m adavoice.runtime BUNDLE "text" --voice NAME --out a.wav``: speak from a bundle
with the runtime alone (no torch). Also ``--text-file F --out-dir D`` (one file per line),
``--list-voices`` and ``serve`` (``python -m adavoice.runtime serve BUNDLE --port 8080``).
Errors are one line on stderr (``error: ...``) and exit 1; bad usage exits 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adavoice.runtime",
                                     description="Speak from an adavoice bundle (no torch).")
    parser.add_argument("bundle", type=Path, help="a folder written by `adavoice export`")
    parser.add_argument("text", nargs="?", help="the text to speak")
    parser.add_argument("--voice", help="voice name (default: the bundle's first)")
    parser.add_argument("--out", type=Path, help="output audio file (.wav/.flac/.ogg)")
    parser.add_argument("--text-file", type=Path, help="speak each non-empty line of this file")
    parser.add_argument("--out-dir", type=Path, help="with --text-file: 0001.wav, 0002.wav, ...")
    parser.add_argument("--length-scale", type=float)
    parser.add_argument("--pitch-shift", type=float, help="semitones")
    parser.add_argument("--energy-scale", type=float)
    parser.add_argument("--vocoder", help="auto | universal | fast")
    parser.add_argument("--threads", type=int, help="onnxruntime threads per call")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--list-voices", action="store_true")
    return parser


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adavoice.runtime serve",
                                     description="HTTP server over a bundle (no torch).")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=None,
                        help="requests synthesised at once (default: CPU cores)")
    parser.add_argument("--queue", type=int, default=None,
                        help="requests waiting beyond those (default: 4 x workers); more: 503")
    parser.add_argument("--max-chars", type=int, default=None,
                        help="longest text a request may send (default 2000)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per request")
    return parser


def main(argv: list[str] | None = None) -> int:
    from adavoice.errors import AdavoiceError

    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "serve":
            args = _serve_parser().parse_args(argv[1:])
            from adavoice.runtime.server import serve

            serve(args.bundle, host=args.host, port=args.port, workers=args.workers,
                  queue=args.queue, max_chars=args.max_chars, threads=args.threads)
            return 0
        return _speak(_parser().parse_args(argv))
    except AdavoiceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _speak(args) -> int:
    from adavoice.errors import ConfigError, OutputError
    from adavoice.runtime import Synthesizer

    tts = Synthesizer.load(args.bundle, threads=args.threads)
    if args.list_voices:
        for name in tts.voices:
            print(name)
        return 0
    jobs = _jobs(args)
    for _, out in jobs:  # every output is checked before the first is spoken
        if out.exists() and not args.overwrite:
            raise OutputError("the output exists", path=out, fix="pass --overwrite")
        if out.suffix.lower() not in (".wav", ".flac", ".ogg"):
            raise ConfigError("the output must end in .wav, .flac or .ogg", path=out)
    knobs = dict(length_scale=args.length_scale, pitch_shift=args.pitch_shift,
                 energy_scale=args.energy_scale, vocoder=args.vocoder)
    for text, out in jobs:
        samples, rate = tts.synthesize(text, voice=args.voice, **knobs)
        write_audio(out, samples, rate)
        print(f"wrote {out} ({len(samples) / rate:.2f} s)")
    return 0


def _jobs(args) -> list[tuple[str, Path]]:
    from adavoice.errors import ConfigError, EmptyTextError, MissingFileError

    if args.text_file is not None:
        if args.text is not None or args.out is not None or args.out_dir is None:
            raise ConfigError("--text-file goes with --out-dir (and no TEXT or --out)")
        if not args.text_file.is_file():
            raise MissingFileError("no such text file", path=args.text_file)
        try:
            lines = [line.strip() for line in args.text_file.read_text("utf-8").splitlines()]
        except UnicodeDecodeError as exc:
            raise ConfigError("the text file is not UTF-8", path=args.text_file) from exc
        lines = [line for line in lines if line]
        if not lines:
            raise EmptyTextError("the text file has no lines to speak", path=args.text_file)
        return [(line, args.out_dir / f"{i:04d}.wav") for i, line in enumerate(lines, 1)]
    if args.text is None or args.out is None:
        raise ConfigError("give TEXT and --out (or --text-file and --out-dir, or "
                          "--list-voices)")
    return [(args.text, args.out)]


def write_audio(path: Path, samples, rate: int) -> None:
    """Write ``samples`` atomically (a temporary name, then a rename)."""
    import soundfile as sf

    from adavoice.atomic import atomic_path, output_error

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, "the audio file") as tmp:
            sf.write(str(tmp), samples, rate, format=path.suffix.lstrip(".").upper(),
                     subtype="PCM_16" if path.suffix.lower() in (".wav", ".flac") else None)
    except (OSError, RuntimeError) as exc:  # soundfile raises RuntimeError subclasses
        raise output_error(path, "the audio file", exc) from exc


if __name__ == "__main__":
    sys.exit(main())
