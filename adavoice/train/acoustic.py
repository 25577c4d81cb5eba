"""`adavoice train base`: train the multi-speaker acoustic model (with its aligner) on a manifest.

The run folder holds ``config.json`` (written first, so ``--resume`` rebuilds the same model),
``checkpoints/last.pt``, ``curves.csv/png``, ``validation.csv``, ``samples/`` and, at the end,
the release ``model.safetensors``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import torch

from adavoice.atomic import atomic_write_bytes
from adavoice.config import MelConfig, read_json
from adavoice.data.features import FeatureCache, precompute
from adavoice.data.manifest import Manifest
from adavoice.errors import ConfigError, DatasetError
from adavoice.models.acoustic import AcousticModel
from adavoice.models.acoustic_config import AcousticConfig
from adavoice.models.base_config import BaseModelConfig
from adavoice.models.base_model import save_base_model
from adavoice.text import SymbolTable, TextProcessor
from adavoice.train.acoustic_data import AcousticDataset, collate_acoustic, corpus_statistics
from adavoice.train.acoustic_losses import LossWeights, acoustic_losses, masked_l1
from adavoice.train.batching import frame_budget_batches
from adavoice.train.loop import TrainConfig, Trainer
from adavoice.train.settings import BASE_RUN


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
                tokenizer: str | None = None, packs_dir: Path | None = None,
                feature_cache: Path | None = None):
    """Load data and build (or, on resume, rebuild) the model and its release config."""
    manifest = Manifest.load(data)
    train_rows, valid_rows = _splits(manifest)
    config_path = out / "config.json"
    resuming = resume and config_path.is_file()
    if resuming:
        cfg = BaseModelConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        processor = TextProcessor.from_symbols(SymbolTable.from_dict(cfg.symbols))
        speakers, mel = cfg.speakers, cfg.mel
    else:
        language = _majority_language(train_rows)
        processor = TextProcessor.from_language(language, tokenizer=tokenizer,
                                                packs_dir=packs_dir)
        speakers, mel = sorted({u.speaker for u in train_rows if u.text}), MelConfig()
    cache = FeatureCache(feature_cache or Path(data) / ".feature-cache", mel)
    precompute(train_rows, cache)
    precompute(valid_rows, cache)
    train_set = AcousticDataset(train_rows, processor, cache, speakers)
    valid_set = AcousticDataset(valid_rows, processor, cache, speakers)
    if len(train_set) == 0:
        raise DatasetError("no transcribed training rows", path=data,
                           fix="a base model needs utterances with text")
    # computed on resume too: a run stopped before its first checkpoint restarts from these,
    # and a checkpoint, when there is one, overwrites them with the same values
    stats = corpus_statistics(train_set)
    if not resuming:
        # the aligner standardises its mel input with the corpus's own centre and spread
        corpus_mel = {"aligner_mel_center": round(stats["mel"][0], 4),
                      "aligner_mel_scale": round(stats["mel"][1], 4)}
        acoustic = AcousticConfig.preset(preset, n_symbols=len(processor.symbols),
                                         n_speakers=len(speakers),
                                         **{**corpus_mel, **(overrides or {})})
        cfg = BaseModelConfig(acoustic=acoustic, mel=mel, language=language,
                              symbols=processor.symbols.to_dict(), speakers=speakers)
    model = AcousticModel(cfg.acoustic)
    model.pitch_stats.copy_(torch.tensor(stats["pitch"]))
    model.energy_stats.copy_(torch.tensor(stats["energy"]))
    return model, cfg, train_set, valid_set


def initialise_from(model: AcousticModel, cfg: BaseModelConfig, init: str | Path) -> dict:
    """Warm start: copy a trained base's tensors into a new model before step 1.

    Tensors with the same name and shape are copied; token embedding rows are matched by symbol
    (a stressed phoneme the old table lacks starts from its plain phoneme plus half the stress
    mark's row), speaker rows and utterance vectors by speaker name. The aligner is copied only
    when its input settings are the same, and the corpus statistics stay the new corpus's.
    Returns counts of what was copied."""
    from adavoice.models.base_model import content_hash, load_base_model

    old, old_cfg = load_base_model(init)
    if old_cfg.mel != cfg.mel:
        raise ConfigError("the --init base was trained on another mel front end", path=init,
                          fix="initialise from a base with the same mel settings")
    aligner_keys = ("aligner_attention_dim", "aligner_temperature", "aligner_mel_center",
                    "aligner_mel_scale", "aligner_own_embedding")
    same_aligner = all(getattr(old_cfg.acoustic, k) == getattr(cfg.acoustic, k)
                       for k in aligner_keys)
    tables = ["token_embedding.weight"] + (["aligner_embedding.weight"] if same_aligner else [])
    mapped = {"token_embedding.weight", "aligner_embedding.weight", "speaker_embedding.weight",
              "speaker_utterance_vectors", "pitch_stats", "energy_stats"}
    new_state, old_state = model.state_dict(), old.state_dict()
    copied = skipped = 0
    with torch.no_grad():
        for name, tensor in new_state.items():
            if name in mapped:
                if name == "aligner_embedding.weight" and not same_aligner:
                    skipped += 1
                continue
            if name.startswith("aligner.") and not same_aligner:
                skipped += 1
                continue
            source = old_state.get(name)
            if source is not None and source.shape == tensor.shape:
                tensor.copy_(source)
                copied += 1
            else:
                skipped += 1
        old_symbols = SymbolTable.from_dict(old_cfg.symbols)
        new_symbols = SymbolTable.from_dict(cfg.symbols)
        rows = [_copy_symbol_rows(old_state[t], new_state[t], old_symbols, new_symbols)
                for t in tables if t in old_state and t in new_state]
        tokens = rows[0]  # of the text encoder's table; the aligner's, when copied, matches
        speakers = 0
        if old_state["speaker_embedding.weight"].shape[1] == \
                new_state["speaker_embedding.weight"].shape[1]:
            for index, speaker in enumerate(cfg.speakers):
                if speaker in old_cfg.speakers:
                    source = old_cfg.speakers.index(speaker)
                    new_state["speaker_embedding.weight"][index] = \
                        old_state["speaker_embedding.weight"][source]
                    new_state["speaker_utterance_vectors"][index] = \
                        old_state["speaker_utterance_vectors"][source]
                    speakers += 1
    return {"from": str(Path(init).resolve()), "sha256": content_hash(init),
            "tensors_copied": copied, "tensors_new": skipped, "token_rows_copied": tokens,
            "speakers_copied": speakers, "aligner_copied": same_aligner}


def _release_tokenizer(folder: str | Path) -> str | None:
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None  # initialise_from reports the missing file
    return read_json(path).get("symbols", {}).get("tokenizer")


def _copy_symbol_rows(old_rows, new_rows, old_symbols: SymbolTable,
                      new_symbols: SymbolTable) -> int:
    """Copy embedding rows by symbol; a stressed phoneme the old table lacks starts from its
    plain phoneme plus half the stress mark's row. Returns the number of rows set."""
    if old_rows.shape[1] != new_rows.shape[1]:
        return 0
    count = 0
    for index, symbol in enumerate(new_symbols.symbols):
        source = old_symbols.id_of(symbol)
        if source is not None:
            new_rows[index] = old_rows[source]
            count += 1
        elif len(symbol) > 1 and old_symbols.id_of(symbol[1:]) is not None:
            row = old_rows[old_symbols.id_of(symbol[1:])].clone()
            mark = old_symbols.id_of(symbol[0])
            new_rows[index] = row + 0.5 * old_rows[mark] if mark is not None else row
            count += 1
    return count


def train_base(data: str | Path, out: str | Path, preset: str = BASE_RUN.preset,
               steps: int = BASE_RUN.steps,
               device: str = "cpu", resume: bool = False, train_cfg: TrainConfig | None = None,
               loss_weights: LossWeights = LossWeights(), overrides: dict | None = None,
               progress: bool = True, tokenizer: str | None = None,
               init: str | Path | None = None,
               aligner_lr_scale: float = BASE_RUN.aligner_lr_scale,
               predicted_condition_share: float = BASE_RUN.predicted_condition_share,
               packs_dir: Path | None = None, feature_cache: Path | None = None) -> Path:
    """Train and write the release folder ``out``; returns it. See the module docstring.

    ``tokenizer`` ("graphemes" | "phonemes") overrides the language pack's default (with
    ``init`` and no ``tokenizer``, the init's tokenizer is kept); ``init``
    (a base release folder) warm-starts a new run, see :func:`initialise_from`. The aligner
    (and its own token embedding) learns at ``aligner_lr_scale`` times the run's rate: alone,
    it aligned the base corpus in 600 steps at 3e-3 where 1e-3 needed twice as many.
    ``predicted_condition_share`` of the utterances decode from the predicted phoneme-level
    condition, as at inference (see :meth:`AcousticModel.forward`). ``packs_dir``: where the
    corpus's language pack is when it is not installed; ``feature_cache``: a cache folder to
    share between runs (default: the corpus's own ``.feature-cache``)."""
    out = Path(out)
    torch.manual_seed((train_cfg or TrainConfig()).seed)
    if init is not None and tokenizer is None:  # a warm start keeps the init's kind of tokens
        tokenizer = _release_tokenizer(init)
    model, cfg, train_set, valid_set = prepare_run(Path(data), out, preset, resume, overrides,
                                                   tokenizer, packs_dir, feature_cache)
    if not (resume and (out / "checkpoints" / "last.pt").is_file()):
        if init is not None:
            cfg.training["init"] = initialise_from(model, cfg, init)
        cfg.training["binarization_start_step"] = loss_weights.binarization_start_step
        cfg.training["aligner_lr_scale"] = aligner_lr_scale
        cfg.training["predicted_condition_share"] = predicted_condition_share
        # written first, so --resume rebuilds this model; atomic: torchrun ranks all write it
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "config.json", (json.dumps(cfg.to_dict(), indent=2,
                                                            ensure_ascii=False) + "\n").encode())
    # a resumed run keeps the binarisation start it began with, whatever the command line says
    loss_weights = dataclasses.replace(loss_weights, binarization_start_step=cfg.training.get(
        "binarization_start_step", loss_weights.binarization_start_step))
    share = cfg.training.get("predicted_condition_share", 0.0)  # 0.0: a run begun before it
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
                     batch.log_f0, batch.log_energy, batch.log_prior,
                     predicted_condition_share=share)
        return acoustic_losses(output, batch, step, loss_weights)

    def validate(net, step):
        if len(valid_set):
            write_sample(net, valid_set, cfg, out / "samples" / f"step_{step:07d}.wav")
        return validation_losses(net, valid_set, dev, step, loss_weights)

    groups = None  # a run begun before aligner learning rates (one group) resumes as it was
    if "aligner_lr_scale" in cfg.training:
        aligner = [p for n, p in model.named_parameters() if n.startswith("aligner")]
        ids = {id(p) for p in aligner}
        groups = [{"params": [p for p in model.parameters() if id(p) not in ids]},
                  {"params": aligner, "lr_scale": cfg.training["aligner_lr_scale"]}]
    trainer = Trainer(model, task, make_batches, load_batch, tcfg, out, device,
                      validate=validate if len(valid_set) else None, params=groups)
    trainer.fit(resume, progress)
    if trainer.rank == 0:
        finish_release(trainer.model.cpu(), cfg, train_set, out,
                       wall_s=trainer.last_session_wall_s, steps=trainer.step)
    return out


@torch.no_grad()
def mean_utterance_vectors(model: AcousticModel, batches, n_speakers: int) -> torch.Tensor:
    """Average utterance-encoder output per speaker over training batches -> (n_speakers, H)."""
    sums, counts = torch.zeros(n_speakers, model.cfg.hidden), torch.zeros(n_speakers)
    if model.utterance_encoder is None:
        return sums
    for batch in batches:
        vectors = model.utterance_encoder(batch.mel, batch.frame_mask)
        sums.index_add_(0, batch.speakers, vectors)
        counts.index_add_(0, batch.speakers, torch.ones(len(batch.speakers)))
    return sums / counts.clamp(min=1).unsqueeze(1)


@torch.no_grad()
def validation_losses(model, dataset, device, step, weights, max_items: int = 32) -> dict:
    """Mean losses over the first ``max_items`` validation rows, plus ``mel_loss_predicted``:
    the mel loss when the decoder gets the predicted phoneme-level condition, as at inference.
    The model comes back in the mode it was given in."""
    was_training = model.training
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
        predicted = model(batch.tokens, batch.text_mask, batch.speakers, batch.mel,
                          batch.frame_mask, batch.log_f0, batch.log_energy, batch.log_prior,
                          durations=output.durations, predicted_condition_share=1.0)
        totals["mel_loss_predicted"] = (totals.get("mel_loss_predicted", 0.0) + float(
            masked_l1(predicted.mel, batch.mel, batch.frame_mask)) / len(chunks))
    model.train(was_training)
    return totals


@torch.no_grad()
def write_sample(model, dataset, cfg: BaseModelConfig, path: Path) -> None:
    """Speak the first validation sentence with Griffin-Lim, so progress can be heard."""
    from adavoice.audio import save_audio
    from adavoice.models.griffin_lim import GriffinLim

    model.eval()
    item = dataset[0]
    voice = model.speaker_condition(item.speaker)
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
