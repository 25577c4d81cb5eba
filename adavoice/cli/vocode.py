"""`adavoice vocode`: copy-synthesis (audio -> mel -> audio) of every audio file in a folder."""

from __future__ import annotations

from pathlib import Path

import typer


def vocode_command(
    in_dir: Path = typer.Argument(..., help="Folder of audio files"),
    out_dir: Path = typer.Argument(..., help="Output folder (same file names)"),
    model: str = typer.Option("demo", "--model", help="'demo' or a base-model folder"),
    vocoder: str = typer.Option("auto", help="auto | neural | griffin-lim"),
) -> None:
    """Re-synthesize each file through the base's mel front end and a vocoder."""
    import torch

    from adavoice.api import BaseModel
    from adavoice.audio import MelFrontend, load_audio, save_audio
    from adavoice.evaluate.report import audio_files

    base = BaseModel.load(model)
    render = base.vocoder(vocoder)
    frontend = MelFrontend(base.cfg.mel)
    files = audio_files(in_dir)
    if not files:
        from adavoice.errors import DatasetError

        raise DatasetError("no audio files", path=in_dir)
    for path in files.values():
        with torch.no_grad():
            mel = frontend(torch.from_numpy(load_audio(path, base.sample_rate)))
        # same name; formats save_audio cannot write (mp3) become .wav
        name = path.name if path.suffix.lower() in (".wav", ".flac", ".ogg") else path.stem + ".wav"
        save_audio(out_dir / name, render(mel).numpy(), base.sample_rate)
    typer.echo(f"wrote {len(files)} files to {out_dir}")
