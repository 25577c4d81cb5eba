"""`adavoice train base`: train the multi-speaker acoustic model (with its aligner) on a manifest.

The run folder holds ``config.json`` (written first, so ``--resume`` rebuilds the same model),
``checkpoints/last.pt``, ``curves.csv/png``, ``validation.csv``, ``samples/`` and, at the end,
the release ``model.safetensors``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import torch

from adavoice.config import MelConfig
from adavoice.data.features import FeatureCache, precompute
from adavoice.data.manifest import Manifest
from adavoice.errors import DatasetError
from adavoice.models.acoustic import AcousticModel
from adavoice.models.acoustic_config import AcousticConfig
from adavoice.models.base_model import (
    BaseModelConfig,
    mean_utterance_vectors,
    save_base_model,
)
from adavoice.text import SymbolTable, TextProcessor
from adavoice.train.acoustic_data import AcousticDataset, collate_acoustic, corpus_statistics
from adavoice.train.acoustic_losses import LossWeights, acoustic_losses
from adavoice.train.batching import frame_budget_batches
from adavoice.train.loop import TrainConfig, Trainer


def _splits(manifest: Manifest) -> tuple[Manifest, Manifest]:
    train, valid = manifest.split("train"), manifest.split("valid")
    if len(train) == 0:  # an imported corpus without splits: hold out every 50th row
        rows = list(manifest)
        train = Manifest([u for i, u in enumerate(rows) if i % 50], manifest.root)
        valid = Manifest([u for i, u in enumerate(rows) if i % 50 == 0], manifest.root)
    return train, valid


def _majority_language(manifest: Manifest) -> str:
    counts = Counter(u.language for u in manifest)
    if not counts:
        raise DatasetError("the manifest is empty", path=manifest.root)
    return counts.most_common(1)[0][0]


def prepare_run(data: Path, out: Path, preset: str, resume: bool, overrides: dict | None = None,
                tokenizer: str | None = None):
    """Load data and build (or, on resume, rebuild) the model and its release config."""
    manifest = Manifest.load(data)
    train_rows, valid_rows = _splits(manifest)
    config_path = out / "config.json"
    if resume and config_path.is_file():
        cfg = BaseModelConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        processor = TextProcessor.from_symbols(SymbolTable.from_dict(cfg.symbols))
    else:
        language = _majority_language(train_rows)
        processor = TextProcessor.from_language(language, tokenizer=tokenizer)
        speakers = sorted({u.speaker for u in train_rows if u.text})
        acoustic = AcousticConfig.preset(preset, n_symbols=len(processor.symbols),
                                         n_speakers=len(speakers), **(overrides or {}))
        cfg = BaseModelConfig(acoustic=acoustic, mel=MelConfig(), language=language,
                              symbols=processor.symbols.to_dict(), speakers=speakers)
    cache = FeatureCache(Path(data) / ".feature-cache", cfg.mel)
    precompute(train_rows, cache)
    precompute(valid_rows, cache)
    train_set = AcousticDataset(train_rows, processor, cache, cfg.speakers)
    valid_set = AcousticDataset(valid_rows, processor, cache, cfg.speakers)
    if len(train_set) == 0:
        raise DatasetError("no transcribed training rows", path=data,
                           fix="a base model needs utterances with text")
    model = AcousticModel(cfg.acoustic)
    if not (resume and config_path.is_file()):
        stats = corpus_statistics(train_set)
        model.pitch_stats.copy_(torch.tensor(stats["pitch"]))
        model.energy_stats.copy_(torch.tensor(stats["energy"]))
        out.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(cfg.to_dict(), indent=2, ensure_ascii=False) + "\n",
                               encoding="utf-8")
    return model, cfg, train_set, valid_set


def train_base(data: str | Path, out: str | Path, preset: str = "small", steps: int = 20000,
               device: str = "cpu", resume: bool = False, train_cfg: TrainConfig | None = None,
               loss_weights: LossWeights = LossWeights(), overrides: dict | None = None,
               progress: bool = True, tokenizer: str | None = None) -> Path:
    """Train and write the release folder ``out``; returns it. See the module docstring.

    ``tokenizer`` ("graphemes" | "phonemes") overrides the language pack's default."""
    out = Path(out)
    torch.manual_seed((train_cfg or TrainConfig()).seed)
    model, cfg, train_set, valid_set = prepare_run(Path(data), out, preset, resume, overrides,
                                                   tokenizer)
    tcfg = train_cfg or TrainConfig(steps=steps)
    mel_cfg = cfg.mel
    lengths = train_set.frame_lengths(mel_cfg.hop_length, mel_cfg.sample_rate_hz)
    dev = torch.device(device)

    def make_batches(epoch):
        return frame_budget_batches(lengths, tcfg.max_frames, tcfg.seed, epoch)

    def load_batch(indices):
        return collate_acoustic([train_set[i] for i in indices]).to(dev)

    def task(net, batch, step):
        output = net(batch.tokens, batch.text_mask, batch.speakers, batch.mel, batch.frame_mask,
                     batch.log_f0, batch.log_energy, batch.log_prior)
        return acoustic_losses(output, batch, step, loss_weights)

    def validate(net, step):
        if len(valid_set):
            write_sample(net, valid_set, cfg, out / "samples" / f"step_{step:07d}.wav")
        return validation_losses(net, valid_set, dev, step, loss_weights)

    trainer = Trainer(model, task, make_batches, load_batch, tcfg, out, device,
                      validate=validate if len(valid_set) else None)
    trainer.fit(resume, progress)
    if trainer.rank == 0:
        finish_release(trainer.model.cpu(), cfg, train_set, out,
                       wall_s=trainer.last_session_wall_s, steps=trainer.step)
    return out


@torch.no_grad()
def validation_losses(model, dataset, device, step, weights, max_items: int = 32) -> dict:
    model.eval()
    totals: dict[str, float] = {}
    indices = list(range(min(len(dataset), max_items)))
    chunks = [indices[i:i + 8] for i in range(0, len(indices), 8)]
    for chunk in chunks:
        batch = collate_acoustic([dataset[i] for i in chunk]).to(device)
        output = model(batch.tokens, batch.text_mask, batch.speakers, batch.mel,
                       batch.frame_mask, batch.log_f0, batch.log_energy, batch.log_prior)
        for key, value in acoustic_losses(output, batch, step, weights).items():
            totals[key] = totals.get(key, 0.0) + float(value) / len(chunks)
    model.train()
    return totals


@torch.no_grad()
def write_sample(model, dataset, cfg: BaseModelConfig, path: Path) -> None:
    """Speak the first validation sentence with Griffin-Lim, so progress can be heard."""
    from adavoice.audio import save_audio
    from adavoice.models.griffin_lim import GriffinLim

    model.eval()
    item = dataset[0]
    voice = model.speaker_voice(item.speaker)
    tokens = torch.from_numpy(item.ids).unsqueeze(0).to(voice.speaker_vector.device)
    mel = model.infer(tokens, voice).mel[0].cpu()
    save_audio(path, GriffinLim(cfg.mel)(mel).numpy(), cfg.mel.sample_rate_hz)
    model.train()


def finish_release(model, cfg: BaseModelConfig, train_set, out: Path, wall_s: float, steps: int):
    """Store per-speaker mean utterance vectors and write config + weights."""
    model.eval()
    n = len(train_set)
    sample = list(range(0, n, max(1, n // 600)))
    batches = (collate_acoustic([train_set[i] for i in sample[j:j + 16]])
               for j in range(0, len(sample), 16))
    model.speaker_utterance_vectors.copy_(
        mean_utterance_vectors(model, batches, cfg.acoustic.n_speakers))
    cfg.training.update({"steps": steps, "last_session_wall_s": round(wall_s, 1),
                         "train_utterances": n})
    save_base_model(out, model, cfg)
