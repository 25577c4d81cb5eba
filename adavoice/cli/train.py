"""`adavoice train ...`: thin shells over adavoice.train."""

from __future__ import annotations

from pathlib import Path

import typer

from adavoice.train.settings import (
    BASE_RUN,
    POSTFILTER_RUN,
    SPEAKER_ENCODER_RUN,
    SPEECH_ENCODER_RUN,
    VOCODER_RUN,
    TrainConfig,
)

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)
LOOP = TrainConfig()


@app.command("base")
def train_base_command(
    data: Path = typer.Argument(..., help="Corpus folder with manifest.jsonl"),
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoints, curves, release)"),
    preset: str = typer.Option(BASE_RUN.preset, help="tiny | small | base"),
    steps: int = typer.Option(BASE_RUN.steps, help="Total optimisation steps"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt"),
    max_frames: int = typer.Option(LOOP.max_frames, help="Frame budget per batch"),
    learning_rate: float = typer.Option(LOOP.learning_rate, help="Peak learning rate"),
    checkpoint_every: int = typer.Option(LOOP.checkpoint_every,
                                         help="Steps between checkpoints"),
    validate_every: int = typer.Option(LOOP.validate_every,
                                       help="Steps between validation passes"),
    seed: int = typer.Option(LOOP.seed),
    tokenizer: str = typer.Option(
        None, help="graphemes | phonemes (default: the --init base's, else the pack's)"),
    init: Path = typer.Option(None, "--init",
                              help="Warm-start a new run from this base release folder"),
    binarize_from: int = typer.Option(BASE_RUN.binarize_from,
                                      help="Step the binarisation loss starts at"),
    aligner_lr_scale: float = typer.Option(BASE_RUN.aligner_lr_scale,
                                           help="Aligner learning rate / the run's"),
    predicted_condition_share: float = typer.Option(
        BASE_RUN.predicted_condition_share,
        help="Share of utterances decoded from the predicted phoneme-level condition"),
) -> None:
    """Train the multi-speaker acoustic model (FastSpeech 2 + CLN + learned alignment)."""
    from adavoice.train.acoustic import train_base
    from adavoice.train.acoustic_losses import LossWeights

    cfg = TrainConfig.for_steps(steps, learning_rate=learning_rate, max_frames=max_frames,
                                checkpoint_every=checkpoint_every,
                                validate_every=validate_every, seed=seed)
    folder = train_base(data, out, preset=preset, device=device, resume=resume, train_cfg=cfg,
                        tokenizer=tokenizer, init=init, aligner_lr_scale=aligner_lr_scale,
                        predicted_condition_share=predicted_condition_share,
                        loss_weights=LossWeights(binarization_start_step=binarize_from))
    typer.echo(f"model written to {folder}")


@app.command("speaker-encoder")
def train_speaker_command(
    data: Path = typer.Argument(..., help="Multi-speaker corpus folder with manifest.jsonl"),
    out: Path = typer.Option(..., "--out", help="Run folder; the release is written there"),
    preset: str = typer.Option(SPEAKER_ENCODER_RUN.preset, help="tiny | small"),
    steps: int = typer.Option(SPEAKER_ENCODER_RUN.steps, help="Total optimisation steps"),
    batch_size: int = typer.Option(SPEAKER_ENCODER_RUN.batch_size, help="Crops per batch"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt"),
) -> None:
    """Train the ECAPA-TDNN speaker encoder (speaker similarity, adaptation start vectors)."""
    from adavoice.train.speaker import train_speaker_encoder

    folder = train_speaker_encoder(data, out, preset=preset, steps=steps, batch_size=batch_size,
                                   device=device, resume=resume)
    typer.echo(f"speaker encoder written to {folder}")


@app.command("mel-encoder")
def train_mel_encoder_command(
    data: Path = typer.Argument(..., help="The base model's corpus folder (manifest.jsonl)"),
    out: Path = typer.Option(..., "--out", help="Run folder; the release is written there"),
    model: str = typer.Option("demo", help="Base model: 'demo' or a folder"),
    steps: int = typer.Option(SPEECH_ENCODER_RUN.steps, help="Total optimisation steps"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt"),
    install: bool = typer.Option(False, "--install",
                                 help="Also write the result into the base folder (mel_encoder/)"),
    pull: float = typer.Option(SPEECH_ENCODER_RUN.pull,
    help="Weight of the MSE pulling it to the text side"),
    init: Path = typer.Option(None, "--init", help="Start from this trained mel encoder"),
    speaker_free: bool = typer.Option(
        SPEECH_ENCODER_RUN.speaker_free,
        help="Predict the decoder input less the voice's speaker terms (added back)"),
    input_norm: bool = typer.Option(
        SPEECH_ENCODER_RUN.input_norm,
        help="Standardise each utterance's mel channels before encoding (takes off "
                   "the voice's long-term spectral envelope)"),
    layers: int = typer.Option(SPEECH_ENCODER_RUN.layers,
                               help="Feed-forward transformer blocks in the encoder"),
) -> None:
    """Train the AdaSpeech 2 mel encoder on a frozen base (enables untranscribed adaptation)."""
    from adavoice.models.base_model import resolve_model_dir
    from adavoice.train.speech_encoder import train_mel_encoder

    folder = train_mel_encoder(resolve_model_dir(model), data, out, steps=steps, device=device,
                               resume=resume, install=install, pull=pull, init=init,
                               speaker_free=speaker_free, input_norm=input_norm,
                               layers=layers)
    typer.echo(f"mel encoder written to {folder}")


@app.command("postfilter")
def train_postfilter_command(
    data: Path = typer.Argument(..., help="The base model's corpus folder (manifest.jsonl)"),
    out: Path = typer.Option(..., "--out", help="Run folder; the release is written there"),
    model: str = typer.Option("demo", help="Base model: 'demo' or a folder"),
    steps: int = typer.Option(POSTFILTER_RUN.steps, help="Total optimisation steps"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt"),
    install: bool = typer.Option(False, "--install",
                                 help="Also write the result into the base folder (postfilter/)"),
    l1_weight: float = typer.Option(POSTFILTER_RUN.l1_weight,
                                    help="Weight of the L1 to the recording's mel (the "
                                         "adversarial term has weight 1)"),
    channels: int = typer.Option(POSTFILTER_RUN.channels, help="Convolution channels"),
    layers: int = typer.Option(POSTFILTER_RUN.layers, help="Convolution layers"),
    adversarial: bool = typer.Option(
        True, "--adversarial/--l1-only",
        help="--l1-only: no discriminator, the L1 alone (a regression postnet)"),
) -> None:
    """Train a GAN mel post-filter on a frozen base: it sharpens the base's mels before the
    universal vocoder, for every voice (see BENCHMARKS.md "A learned post-filter")."""
    from adavoice.models.base_model import resolve_model_dir
    from adavoice.train.mel_postfilter import train_postfilter

    folder = train_postfilter(resolve_model_dir(model), data, out, steps=steps, device=device,
                              resume=resume, install=install, l1_weight=l1_weight,
                              channels=channels, layers=layers, adversarial=adversarial)
    typer.echo(f"mel post-filter written to {folder}")


@app.command("vocoder")
def train_vocoder_command(
    data: Path = typer.Argument(..., help="Corpus folder with manifest.jsonl"),
    out: Path = typer.Option(..., "--out", help="Run folder; the release is written there"),
    preset: str = typer.Option(VOCODER_RUN.preset, help="tiny | small"),
    steps: int = typer.Option(VOCODER_RUN.steps, help="Total optimisation steps"),
    batch_size: int = typer.Option(VOCODER_RUN.batch_size, help="Audio segments per batch"),
    segment_frames: int = typer.Option(VOCODER_RUN.segment_frames,
                                       help="Segment length in mel frames"),
    init: Path = typer.Option(None, "--init", help="Fine-tune this trained vocoder folder"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt"),
    exclude_speaker: list[str] = typer.Option([], "--exclude-speaker",
                                              help="Keep this speaker out (repeatable)"),
    adversarial: bool = typer.Option(
        False, "--adversarial",
        help="Adversarial phase: multi-period + multi-resolution discriminators (use --init)"),
    critic_warmup: int = typer.Option(
        VOCODER_RUN.critic_warmup,
        help="Steps the discriminators learn before they guide the vocoder"),
    phase_weight: float = typer.Option(
        VOCODER_RUN.phase_weight,
        help="Weight of the phase losses (instantaneous phase, group delay, frequency)"),
    phase_weighting: str = typer.Option(
        VOCODER_RUN.phase_weighting,
        help="uniform | magnitude: how the phase losses weigh the bins"),
    magnitude_weight: float = typer.Option(
        VOCODER_RUN.magnitude_weight,
        help="Weight of the head's log-magnitude L1 against the real STFT"),
    phase_head: str = typer.Option(
        None, help="angle | vector: how the head states the phase (default: the preset's)"),
) -> None:
    """Train the iSTFT-head neural vocoder (multi-resolution STFT + mel losses; with
    --phase-weight, phase supervision; with --adversarial, discriminators too)."""
    from adavoice.train.vocoder import train_vocoder

    folder = train_vocoder(data, out, preset=preset, steps=steps, batch_size=batch_size,
                           segment_frames=segment_frames, device=device, resume=resume,
                           init=init, exclude_speakers=tuple(exclude_speaker),
                           adversarial=adversarial, critic_warmup=critic_warmup,
                           phase_weight=phase_weight, phase_head=phase_head,
                           phase_weighting=phase_weighting,
                           magnitude_weight=magnitude_weight)
    typer.echo(f"vocoder written to {folder}")


@app.command("asr", help="Train the CTC speech recogniser.")
def train_asr_command(
    data: Path = typer.Argument(..., help="Corpus folder with manifest.jsonl (one language)"),
    out: Path = typer.Option(..., "--out", help="Run folder; the release is written there"),
    preset: str = typer.Option("small", help="tiny | small (~2.9 M parameters)"),
    steps: int = typer.Option(4000, help="Total optimisation steps"),
    max_frames: int = typer.Option(12000, help="Padded mel frames per batch"),
    tokens: str = typer.Option("graphemes", help="graphemes | phonemes"),
    init: Path = typer.Option(None, "--init", help="Start from this ASR folder, or a model with "
                              "asr/ (demo: English); another language's rows match by letter"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt"),
) -> None:
    """Train the CTC recogniser (Conformer, SpecAugment, greedy decoding)."""
    from adavoice.train.asr import train_asr

    folder = train_asr(data, out, preset=preset, steps=steps, max_frames=max_frames,
                       tokens=tokens, init=init, device=device, resume=resume)
    typer.echo(f"recogniser written to {folder}")
