"""`adavoice vocode`: copy-synthesis (audio -> mel -> audio) of every audio file in a folder."""

from __future__ import annotations

from pathlib import Path

import typer


def vocode_command(
    in_dir: Path = typer.Argument(..., help="Folder of audio files"),
    out_dir: Path = typer.Argument(..., help="Output folder (same file names)"),
    model: str = typer.Option("demo", "--model", help="'demo' or a base-model folder"),
    vocoder: str = typer.Option(None, help="auto (default: the base's best) | universal | "
                                           "fast | griffin-lim"),
) -> None:
    """Re-synthesize each file through the base's mel front end and a vocoder."""
    import torch

    from adavoice.api import BaseModel
    from adavoice.audio import AUDIO_FORMATS, MelFrontend, load_audio, save_audio
    from adavoice.errors import ConfigError, DatasetError
    from adavoice.evaluate.report import audio_files

    files = audio_files(in_dir)
    if not files:
        raise DatasetError("no audio files", path=in_dir)
    if out_dir.resolve() == in_dir.resolve() or (out_dir.exists() and out_dir.samefile(in_dir)):
        raise ConfigError("the output folder is the input folder: vocoding would overwrite "
                          "the recordings", path=out_dir, fix="pass another output folder")
    base = BaseModel.load(model)
    render = base.vocoder(vocoder or "auto")
    frontend = MelFrontend(base.cfg.mel)
    # every input is read before the first output is written: a bad file fails the run whole
    mels = {}
    for path in files.values():
        with torch.no_grad():
            mels[path] = frontend(torch.from_numpy(load_audio(path, base.sample_rate)))
    for path, mel in mels.items():
        # same name; formats save_audio cannot write (mp3) become .wav
        name = path.name if path.suffix.lower() in AUDIO_FORMATS else path.stem + ".wav"
        save_audio(out_dir / name, render(mel).numpy(), base.sample_rate)
    typer.echo(f"wrote {len(files)} files to {out_dir}")
