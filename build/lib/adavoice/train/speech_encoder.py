"""`adavoice train mel-encoder`: AdaSpeech 2's mel encoder on a frozen base.

Loss = L1(decoder(mel_encoder(mel)), mel) + ``pull`` * MSE(mel_encoder(mel), text side), where
the text side is the base's length-regulated decoder input of the same utterance (teacher-forced,
no gradient) less the speaker and utterance terms the base adds for the voice; those are added
back before the decoder (a speaker-free encoder, :func:`voice_frames`). The base is never
modified. The release (``config.json`` + ``model.safetensors``)
is written to OUT; ``--install`` also copies it into the base folder as ``mel_encoder/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from adavoice.config import read_json
from adavoice.data.features import FeatureCache, precompute
from adavoice.data.manifest import Manifest
from adavoice.errors import ConfigError
from adavoice.models.base_model import content_hash, load_base_model
from adavoice.models.speech_encoder import SpeechEncoder, SpeechEncoderConfig, voice_frames
from adavoice.text import SymbolTable, TextProcessor
from adavoice.train.acoustic import _splits
from adavoice.train.acoustic_data import AcousticDataset, collate_acoustic
from adavoice.train.acoustic_losses import masked_l1, masked_mse
from adavoice.train.batching import frame_budget_batches
from adavoice.train.loop import TrainConfig, Trainer, recent_mean
from adavoice.train.settings import SPEECH_ENCODER_RUN


def mel_encoder_losses(base, encoder, batch, pull: float) -> dict[str, torch.Tensor]:
    """Reconstruction through the frozen decoder plus the pull towards the text side."""
    speaker_vector = base.speaker_embedding(batch.speakers)
    with torch.no_grad():
        text_side = base(batch.tokens, batch.text_mask, batch.speakers, batch.mel,
                         batch.frame_mask, batch.log_f0, batch.log_energy,
                         batch.log_prior).decoder_input
        utterance_vector = (base.utterance_encoder(batch.mel, batch.frame_mask)
                            if base.utterance_encoder is not None else None)
        no_voice = torch.zeros_like(text_side)
        with_voice = voice_frames(encoder, base, no_voice, batch.frame_mask, speaker_vector,
                                  utterance_vector)
        text_side = text_side - with_voice  # zero unless the encoder is speaker-free
    predicted = encoder(batch.mel, batch.frame_mask)
    frames = voice_frames(encoder, base, predicted, batch.frame_mask, speaker_vector,
                          utterance_vector)
    mel = base.decode(frames, batch.frame_mask, speaker_vector)
    reconstruction = masked_l1(mel, batch.mel, batch.frame_mask)
    alignment = masked_mse(predicted, text_side, batch.frame_mask)
    return {"loss": reconstruction + pull * alignment, "mel_loss": reconstruction,
            "pull_loss": alignment}


def train_mel_encoder(base_dir: str | Path, data: str | Path, out: str | Path,
                      steps: int = SPEECH_ENCODER_RUN.steps, device: str = "cpu",
                      resume: bool = False, train_cfg: TrainConfig | None = None,
                      pull: float = SPEECH_ENCODER_RUN.pull,
                      install: bool = False, init: str | Path | None = None,
                      progress: bool = True,
                      speaker_free: bool = SPEECH_ENCODER_RUN.speaker_free,
                      input_norm: bool = SPEECH_ENCODER_RUN.input_norm,
                      layers: int = SPEECH_ENCODER_RUN.layers) -> Path:
    """Train a mel encoder for the base in ``base_dir`` on the corpus ``data``; ``init``
    starts from a trained mel-encoder folder (e.g. to continue with another ``pull``; it keeps
    its own ``speaker_free``, ``input_norm`` and ``layers``)."""
    out, data, base_dir = Path(out), Path(data), Path(base_dir)
    base, cfg = load_base_model(base_dir)
    for parameter in base.parameters():
        parameter.requires_grad_(False)
    manifest = Manifest.load(data)
    train_rows, _ = _splits(manifest)
    cache = FeatureCache(data / ".feature-cache", cfg.mel)
    precompute(train_rows, cache)
    processor = TextProcessor.from_symbols(SymbolTable.from_dict(cfg.symbols))
    train_set = AcousticDataset(train_rows, processor, cache, cfg.speakers)
    tcfg = train_cfg or TrainConfig(steps=steps, learning_rate=1e-3, max_frames=4000,
                                    warmup_steps=min(300, steps // 10 + 1),
                                    validate_every=10**9)
    torch.manual_seed(tcfg.seed)
    dev = torch.device(device)
    base.to(dev).eval()
    lengths = train_set.frame_lengths(cfg.mel.hop_length, cfg.mel.sample_rate_hz)
    # the run's encoder config is written first, so --resume rebuilds the same encoder whatever
    # the command line now says (the checkpoint then brings its weights)
    config_path = out / "encoder-config.json"
    if resume and (out / "checkpoints" / "last.pt").is_file():
        if config_path.is_file():
            recorded = read_json(config_path)
        elif (out / "config.json").is_file():  # a run from before the file: its release says
            recorded = read_json(out / "config.json")["encoder"]
        else:
            raise ConfigError("this run's encoder settings were not recorded, so it cannot be "
                              "resumed safely", path=out,
                              fix="start a new run (--init can start it from a release)")
        encoder = SpeechEncoder(SpeechEncoderConfig.from_dict(recorded))
        if not config_path.is_file():
            config_path.write_text(json.dumps(encoder.cfg.to_dict(), indent=2) + "\n")
    else:
        encoder = (SpeechEncoder.from_dir(init).train() if init is not None
                   else SpeechEncoder(SpeechEncoderConfig.for_base(cfg.acoustic,
                                                             speaker_free=speaker_free,
                                                             input_norm=input_norm,
                                                             layers=layers)))
        out.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(encoder.cfg.to_dict(), indent=2) + "\n")

    def make_batches(epoch):
        return frame_budget_batches(lengths, tcfg.max_frames, tcfg.seed, epoch)

    def load_batch(indices):
        return collate_acoustic([train_set[i] for i in indices]).to(dev)

    def task(net, batch, step):
        return mel_encoder_losses(base, net, batch, pull)

    trainer = Trainer(encoder, task, make_batches, load_batch, tcfg, out, device)
    history = trainer.fit(resume, progress)
    if trainer.rank == 0:
        training = {"base_weights_sha256": content_hash(base_dir), "data": str(data),
                    "steps": trainer.step, "pull": pull, "init": str(init) if init else None,
                    "last_session_wall_s": trainer.last_session_wall_s,
                    "final_mel_loss": recent_mean(history, "mel_loss")}
        trainer.model.cpu().eval().save(out, training)
        if install:
            trainer.model.save(base_dir / "mel_encoder", training, half=True)
    return out

