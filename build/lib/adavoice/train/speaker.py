"""`adavoice train speaker-encoder`: ECAPA-TDNN with an additive-angular-margin softmax over the
corpus speakers, on random mel crops. The run folder holds ``checkpoints/``, curves and, at the
end, the release (``config.json`` + ``model.safetensors``) that ``SpeakerEncoder.from_dir`` reads.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adavoice.config import MelConfig
from adavoice.data.features import FeatureCache, precompute
from adavoice.data.manifest import Manifest
from adavoice.errors import DatasetError
from adavoice.models.speaker import SpeakerEncoder, SpeakerEncoderConfig
from adavoice.train.loop import TrainConfig, Trainer, recent_mean
from adavoice.train.settings import SPEAKER_ENCODER_RUN


class SpeakerTrainingModel(nn.Module):
    """Encoder + cosine classifier; forward returns the AAM-softmax loss and accuracy."""

    def __init__(self, cfg: SpeakerEncoderConfig, n_speakers: int):
        super().__init__()
        from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper

        self.encoder = SpeakerEncoder(cfg)
        self.classes = nn.Parameter(torch.randn(n_speakers, cfg.embedding_dim) * 0.1)
        self.criterion = LogSoftmaxWrapper(AdditiveAngularMargin(cfg.margin, cfg.scale))

    def forward(self, mel, speakers):
        embedding = nn.functional.normalize(self.encoder(mel), dim=-1)
        cosine = embedding @ nn.functional.normalize(self.classes, dim=-1).T
        loss = self.criterion(cosine.unsqueeze(1), speakers.unsqueeze(1))
        accuracy = (cosine.argmax(-1) == speakers).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach()}


def crop(mel: np.ndarray, frames: int, rng: random.Random) -> np.ndarray:
    """A ``frames``-long window of (n_mels, T); short clips are tiled, never zero-padded."""
    if mel.shape[1] < frames:
        mel = np.tile(mel, (1, frames // mel.shape[1] + 1))
    start = rng.randrange(mel.shape[1] - frames + 1)
    return mel[:, start:start + frames]


def train_speaker_encoder(data: str | Path, out: str | Path,
                          preset: str = SPEAKER_ENCODER_RUN.preset,
                          steps: int = SPEAKER_ENCODER_RUN.steps,
                          batch_size: int = SPEAKER_ENCODER_RUN.batch_size, device: str = "cpu",
                          resume: bool = False, train_cfg: TrainConfig | None = None,
                          progress: bool = True) -> Path:
    """Train on every speaker of the manifest's train split; write the release to ``out``."""
    out, data = Path(out), Path(data)
    manifest = Manifest.load(data)
    rows = list(manifest.split("train")) or list(manifest)
    speakers = sorted({u.speaker for u in rows})
    if len(speakers) < 2:
        raise DatasetError("a speaker encoder needs at least two speakers", path=data)
    mel_cfg = MelConfig()
    cache = FeatureCache(data / ".feature-cache", mel_cfg)
    precompute(Manifest(rows, manifest.root), cache)
    cfg = SpeakerEncoderConfig.preset(preset, n_mels=mel_cfg.n_mels)
    tcfg = train_cfg or TrainConfig(steps=steps, learning_rate=2e-3,
                                    warmup_steps=min(200, steps // 10 + 1), validate_every=10**9)
    torch.manual_seed(tcfg.seed)
    index = {name: i for i, name in enumerate(speakers)}
    labels = [index[u.speaker] for u in rows]
    dev = torch.device(device)

    def make_batches(epoch):
        rng = random.Random(tcfg.seed * 1000 + epoch)
        order = list(range(len(rows)))
        rng.shuffle(order)
        return [(epoch, i, order[i:i + batch_size])
                for i in range(0, len(order), batch_size)]

    def load_batch(item):
        epoch, position, indices = item
        rng = random.Random(hash((tcfg.seed, epoch, position)) & 0xFFFFFFFF)
        mels = [crop(cache.get(manifest.audio_path(rows[i])).mel, cfg.crop_frames, rng)
                for i in indices]
        return (torch.from_numpy(np.stack(mels)).to(dev),
                torch.tensor([labels[i] for i in indices], device=dev))

    def task(net, batch, step):
        return net(*batch)

    model = SpeakerTrainingModel(cfg, len(speakers))
    trainer = Trainer(model, task, make_batches, load_batch, tcfg, out, device)
    history = trainer.fit(resume, progress)
    if trainer.rank == 0:
        training = {"speakers": speakers, "steps": trainer.step, "data": str(data),
                    "utterances": len(rows),
                    "last_session_wall_s": trainer.last_session_wall_s,
                    "final_train_accuracy": recent_mean(history, "accuracy")}
        encoder = trainer.model.encoder.cpu().eval()
        encoder.save(out, mel_cfg, training)
        write_centroids(out, encoder, Manifest(rows, manifest.root), cache, speakers)
    return out


@torch.no_grad()
def write_centroids(out: str | Path, encoder: SpeakerEncoder, manifest: Manifest,
                    cache: FeatureCache, speakers: list[str], per_speaker: int = 40) -> Path:
    """``centroids.safetensors``: each speaker's unit mean embedding (whole clips), in the order
    of ``speakers`` (the same order as the release config's ``training.speakers``)."""
    from safetensors.torch import save_file

    table = []
    for name in speakers:
        rows = [u for u in manifest if u.speaker == name][:per_speaker]
        mels = [torch.from_numpy(cache.get(manifest.audio_path(u)).mel) for u in rows]
        table.append(encoder.embed_many(mels))
    path = Path(out) / "centroids.safetensors"
    save_file({"centroids": torch.stack(table).contiguous()}, str(path))
    return path
