"""`adavoice export` (a deployable bundle, DESIGN §8) and `adavoice serve` (HTTP over one)."""

from __future__ import annotations

from pathlib import Path

import typer


def export_command(
    out: Path = typer.Option(..., "--out", help="Bundle folder to write (or add a voice to)"),
    model: str = typer.Option(None, "--model", help="'demo' (default) or a base-model folder; "
                                                    "with --add-voice: the bundle's base"),
    device: str = typer.Option("cpu", "--device", help="cpu (float32 graphs) | cuda (float16 "
                                                      "graphs for onnxruntime's CUDA provider)"),
    voice: list[Path] = typer.Option([], "--voice", help="An adapted voice folder to include "
                                                          "(repeatable)"),
    name: list[str] = typer.Option([], "--name", help="Name for each --voice / --add-voice "
                                                      "(default: its folder name)"),
    add_voice: Path = typer.Option(None, "--add-voice", help="Add this voice folder to the "
                                                             "existing bundle at --out"),
    vocoder: list[str] = typer.Option([], "--vocoder", help="universal | fast (repeatable; "
                                                            "default: every one the base has)"),
    no_speakers: bool = typer.Option(False, "--no-speakers", help="Leave out the base's seen "
                                                                  "speakers"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing bundle / "
                                                              "voice of that name"),
) -> None:
    """Write acoustic.onnx (the voice is an input), vocoder.onnx, bundle.json and voices/."""
    from adavoice.errors import ConfigError
    from adavoice.export.bundle import add_voice as add
    from adavoice.export.bundle import export_bundle

    if add_voice is not None:
        if voice or vocoder or no_speakers:
            raise ConfigError("--add-voice adds one voice to a bundle; it takes only --name "
                              "and --overwrite")
        if len(name) > 1:
            raise ConfigError("--add-voice takes at most one --name")
        path = add(out, add_voice, name[0] if name else None, overwrite, model)
        typer.echo(f"added voice {path.stem!r} to {out}")
        return
    bundle = export_bundle(model or "demo", out, device=device, voices=list(voice),
                           names=list(name), vocoders=tuple(vocoder) or None,
                           speakers=[] if no_speakers else None, overwrite=overwrite)
    from adavoice.runtime.format import VOICES_DIR

    count = len(list((bundle / VOICES_DIR).glob("*.json")))
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 1e6
    typer.echo(f"wrote {bundle} ({count} voices, {size:.1f} MB, {device})")


def serve_command(
    bundle: Path = typer.Argument(..., help="A bundle folder written by `adavoice export`"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8080, "--port"),
    workers: int = typer.Option(None, "--workers", help="Requests synthesised at once "
                                                        "(default: CPU cores)"),
    queue: int = typer.Option(None, "--queue", help="Requests that may wait beyond those "
                                                    "(default: 4 x workers); more get 503"),
    max_chars: int = typer.Option(None, "--max-chars", help="Longest text a request may send "
                                                            "(default 2000)"),
    threads: int = typer.Option(1, "--onnx-threads", help="onnxruntime threads per request"),
) -> None:
    """HTTP server: GET /voices, POST /synthesize (JSON -> audio/wav), GET /health."""
    from adavoice.runtime.server import serve

    serve(bundle, host=host, port=port, workers=workers, queue=queue, max_chars=max_chars,
          threads=threads)
