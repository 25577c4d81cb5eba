"""``adavoice train asr``: the CTC recogniser (adavoice.models.asr) on a corpus's transcribed
utterances, with the project's loop (checkpoints, resume, progress, torchrun DDP).

Every mel is computed once, at the start, and held in memory (1 h of audio is ~120 MB);
batches are utterances of similar length up to ``max_frames`` mel frames, SpecAugment masks
(two frequency bands of up to 15 bins, two time spans of up to 5 % of the utterance) on the
training batches, CTC loss with the pad as blank. At the end the release holds the weights,
the mel settings, the symbol table and the greedy CER/WER on the valid split.
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import numpy as np
import torch

from adavoice.audio import MelFrontend, load_audio
from adavoice.config import MelConfig
from adavoice.data.manifest import Manifest
from adavoice.errors import ConfigError, DatasetError
from adavoice.models.asr import AsrConfig, CtcRecogniser, greedy_ids, resolve_asr_dir
from adavoice.train.loop import TrainConfig, Trainer, recent_mean


def asr_processor(language: str, tokens: str, packs_dir: Path | None = None):
    """The text front end whose symbol table the recogniser writes."""
    from adavoice.text import TextProcessor

    return TextProcessor.from_language(language, tokenizer=tokens, emit_warnings=False,
                                       packs_dir=packs_dir)


def load_utterances(manifest: Manifest, rows, processor, mel_cfg: MelConfig,
                    progress: bool = False) -> list[tuple[torch.Tensor, list[int], str]]:
    """(mel (n_mels, T), token ids, normalised reference) per row with text; rows whose text
    gives no tokens are skipped."""
    from adavoice.errors import EmptyTextError

    frontend = MelFrontend(mel_cfg)
    items = []
    for row in rows:
        if not row.text:
            continue
        try:
            processed = processor.process(row.text)
        except EmptyTextError:
            continue
        with torch.no_grad():
            mel = frontend(torch.from_numpy(load_audio(manifest.audio_path(row),
                                                       mel_cfg.sample_rate_hz)))
        items.append((mel, list(processed.ids), token_text(processed.tokens)))
    return items


def token_text(tokens) -> str:
    """Tokens as the string CER compares: graphemes are text; phonemes are IPA with spaces."""
    return "".join(tokens)


def pad_mels(mels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_mels, T_i) mels -> ((B, n_mels, max T) padded with the log floor, lengths (B,))."""
    lengths = torch.tensor([m.shape[-1] for m in mels])
    floor = math.log(MelConfig().log_floor)
    padded = torch.full((len(mels), mels[0].shape[0], int(lengths.max())), floor)
    for row, mel in enumerate(mels):
        padded[row, :, :mel.shape[-1]] = mel
    return padded, lengths


class _LengthBatches:
    """Batches of utterances of similar length, at most ``max_frames`` frames of padded mel
    each, reshuffled per epoch (the same for a seed wherever a run resumes)."""

    def __init__(self, items, max_frames: int, seed: int, device: torch.device,
                 augment: bool, warp: float = 0.0, mel_cfg: MelConfig | None = None):
        self.items, self.max_frames, self.seed = items, max_frames, seed
        self.device, self.augment, self.warp = device, augment, warp
        self.mel_cfg = mel_cfg or MelConfig()

    def make(self, epoch: int) -> list:
        rng = random.Random(self.seed * 7919 + epoch)
        order = sorted(range(len(self.items)),
                       key=lambda i: (self.items[i][0].shape[-1], rng.random()))
        batches, current, longest = [], [], 0
        for index in order:
            frames = self.items[index][0].shape[-1]
            if current and max(longest, frames) * (len(current) + 1) > self.max_frames:
                batches.append(current)
                current, longest = [], 0
            current.append(index)
            longest = max(longest, frames)
        if current:
            batches.append(current)
        rng.shuffle(batches)
        return [(epoch, position, batch) for position, batch in enumerate(batches)]

    def load(self, item):
        epoch, position, indices = item
        chosen = [self.items[i] for i in indices]
        mel, lengths = pad_mels([m for m, _, _ in chosen])
        if self.augment:
            rng = random.Random(hash((self.seed, epoch, position)))
            if self.warp > 0:
                mel = vtlp(mel, self.mel_cfg, [rng.uniform(1 - self.warp, 1 + self.warp)
                                               for _ in chosen])
            mel = spec_augment(mel, lengths, rng)
        targets = torch.tensor([t for _, ids, _ in chosen for t in ids], dtype=torch.long)
        target_lengths = torch.tensor([len(ids) for _, ids, _ in chosen])
        return (mel.to(self.device), lengths.to(self.device), targets.to(self.device),
                target_lengths.to(self.device))


def vtlp(mel: torch.Tensor, mel_cfg: MelConfig, factors: list[float],
         boundary_share: float = 0.6) -> torch.Tensor:
    """Vocal tract length perturbation (Jaitly & Hinton, 2013) on log-mels (B, n_mels, T): each
    utterance's spectrum is stretched along frequency by its factor (> 1: a shorter vocal
    tract, formants move up; factors in (0.5, 1.5)), linear in Hz up to ``boundary_share`` of
    the highest band's centre (4.6 kHz for the shared 0-8 kHz mel) and pinned at the highest
    band above it, so no band leaves the mel range. Interpolated between bin centres."""
    import librosa

    centres = torch.from_numpy(librosa.mel_frequencies(
        n_mels=mel_cfg.n_mels + 2, fmin=mel_cfg.fmin_hz, fmax=mel_cfg.fmax_hz)[1:-1]).float()
    top = float(centres[-1])  # the highest band stays where it is
    boundary_hz = boundary_share * top
    out = mel.clone()
    for row, factor in enumerate(factors):
        if factor == 1.0:
            continue
        # the warp f -> g(f) and its inverse: where each output bin reads the input spectrum
        knee = boundary_hz * min(factor, 1.0) / factor
        below = centres <= knee * factor
        source = torch.where(
            below, centres / factor,
            knee + (centres - knee * factor) * (top - knee) / (top - knee * factor))
        position = torch.from_numpy(np.interp(source.numpy(), centres.numpy(),
                                              np.arange(len(centres)))).float()
        low = position.floor().long().clamp(0, len(centres) - 1)
        high = (low + 1).clamp(max=len(centres) - 1)
        share = (position - low.float()).unsqueeze(-1)
        out[row] = mel[row, low] * (1 - share) + mel[row, high] * share
    return out


def spec_augment(mel: torch.Tensor, lengths: torch.Tensor, rng: random.Random,
                 bands: int = 2, band_bins: int = 15, spans: int = 2,
                 span_share: float = 0.05) -> torch.Tensor:
    """SpecAugment's masks (no time warping), filled with each utterance's mean."""
    mel = mel.clone()
    n_mels = mel.shape[1]
    for row, length in enumerate(lengths.tolist()):
        fill = mel[row, :, :length].mean()
        for _ in range(bands):
            width = rng.randint(0, band_bins)
            start = rng.randint(0, max(0, n_mels - width))
            mel[row, start:start + width, :length] = fill
        for _ in range(spans):
            width = rng.randint(0, max(1, int(length * span_share)))
            start = rng.randint(0, max(0, length - width))
            mel[row, :, start:start + width] = fill
    return mel


class CtcTask(torch.nn.Module):
    """The recogniser and its CTC loss: forward(batch) -> {"loss"}."""

    def __init__(self, model: CtcRecogniser):
        super().__init__()
        self.model = model

    def forward(self, batch):
        mel, lengths, targets, target_lengths = batch
        log_probs, steps = self.model(mel, lengths)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1).float(), targets, steps,
                                            target_lengths, blank=0, zero_infinity=True)
        return {"loss": loss}


@torch.no_grad()
def transcribe_mels(model: CtcRecogniser, mels: list[torch.Tensor], symbols: list[str],
                    batch: int = 16, decoder: str = "greedy", lm=None,
                    with_confidence: bool = False):
    """Transcripts of (n_mels, T) mels, as token strings (see :func:`token_text`):
    ``greedy``, or ``beam`` (CTC prefix beam search, with the character n-gram ``lm``).
    ``with_confidence``: also return, per utterance, the mean over encoder steps of the best
    token's probability (``(texts, confidences)``)."""
    from adavoice.models.ctc_decode import prefix_beam_search

    model.eval()
    out, confidence = [], []
    for start in range(0, len(mels), batch):
        padded, lengths = pad_mels(mels[start:start + batch])
        log_probs, steps = model(padded, lengths)
        if with_confidence:
            best = log_probs.max(-1).values.exp()
            confidence += [float(best[row, :n].mean()) for row, n in enumerate(steps.tolist())]
        if decoder == "beam":
            paths = [prefix_beam_search(log_probs[row, :n].float().numpy(), symbols, lm=lm)
                     for row, n in enumerate(steps.tolist())]
        else:
            paths = greedy_ids(log_probs, steps)
        out += [token_text(symbols[i] for i in ids) for ids in paths]
    return (out, confidence) if with_confidence else out


def score(references: list[str], hypotheses: list[str]) -> dict:
    """Pooled CER and WER (fractions) with the project's text normalisation."""
    from adavoice.evaluate.text_metrics import cer, wer

    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        raise DatasetError("no reference transcripts to score against")
    refs, hyps = zip(*pairs, strict=True)
    return {"cer": cer(list(refs), list(hyps)), "wer": wer(list(refs), list(hyps)),
            "utterances": len(pairs)}


def score_rows(rows, references: list[str], hypotheses: list[str]) -> dict:
    """:func:`score` plus ``rows``: id, speaker, reference, hypothesis, CER and WER per
    utterance (manifest rows in the order of the texts)."""
    from adavoice.evaluate.text_metrics import cer, wer

    result = score(references, hypotheses)
    result["rows"] = [{"id": r.id, "speaker": r.speaker, "reference": ref, "hypothesis": hyp,
                       "cer": cer(ref, hyp) if ref.strip() else None,
                       "wer": wer(ref, hyp) if ref.strip() else None}
                      for r, ref, hyp in zip(rows, references, hypotheses, strict=True)]
    return result


def train_asr(data: str | Path, out: str | Path, preset: str = "small", steps: int = 4000,
              max_frames: int = 12000, tokens: str = "graphemes", init: str | Path | None = None,
              device: str = "cpu", resume: bool = False, learning_rate: float = 1e-3,
              train_cfg: TrainConfig | None = None, progress: bool = True) -> Path:
    """Train on the manifest's train split (all rows when it has none); write the release to
    ``out``. ``init``: an ASR folder to start from; with the same symbol table every tensor is
    copied, with another one (a recogniser of another language) the output rows are matched by
    symbol (see :func:`initialise_recogniser`)."""
    out, data = Path(out), Path(data)
    manifest = Manifest.load(data)
    rows = list(manifest.split("train")) or list(manifest)
    valid_rows = list(manifest.split("valid"))
    languages = {row.language for row in rows}
    if len(languages) != 1:
        raise DatasetError(f"the corpus mixes languages {sorted(languages)}; an ASR run takes "
                           f"one", path=data)
    processor = asr_processor(languages.pop(), tokens)
    mel_cfg = MelConfig()
    items = load_utterances(manifest, rows, processor, mel_cfg)
    if not items:
        raise DatasetError("no transcribed utterances to train on", path=data)
    valid = load_utterances(manifest, valid_rows, processor, mel_cfg)
    tcfg = train_cfg or TrainConfig(steps=steps, learning_rate=learning_rate,
                                    warmup_steps=min(500, steps // 10 + 1),
                                    validate_every=10**9, max_frames=max_frames)
    return fit_recogniser(items, valid, out, processor.symbols.to_dict(), preset, tcfg,
                          init=init, device=device, resume=resume, progress=progress,
                          training={"data": str(data), "tokens": tokens})


def fit_recogniser(items: list, valid: list, out: str | Path, symbols: dict, preset: str | None,
                   tcfg: TrainConfig, init: str | Path | None = None, device: str = "cpu",
                   resume: bool = False, progress: bool = True, training: dict | None = None,
                   mel_cfg: MelConfig | None = None, warp: float = 0.0) -> Path:
    """The training itself, on ``items`` already in memory: (mel (n_mels, T), token ids,
    reference) triples, mels from real audio or from a TTS. ``preset`` None: the size of
    ``init``. ``warp``: VTLP factors drawn from 1 +- warp per utterance (:func:`vtlp`; 0: off).
    Writes the release to ``out`` (greedy CER/WER on ``valid`` in its config) and returns
    it."""
    out, mel_cfg = Path(out), mel_cfg or MelConfig()
    if not items:
        raise DatasetError("no transcribed utterances to train on", path=out)
    if preset is None:  # the size of the recogniser it starts from
        if init is None:
            raise ConfigError("a recogniser without --init needs a preset", fix="tiny | small")
        preset = "init"
        cfg = CtcRecogniser.from_dir(resolve_asr_dir(init))[0].cfg.replace(
            n_tokens=len(symbols["symbols"]))
    else:
        cfg = AsrConfig.preset(preset, n_tokens=len(symbols["symbols"]))
    model = CtcRecogniser(cfg)
    init_report = None
    if init is not None:
        init_report = initialise_recogniser(model, symbols, init)
    else:  # standardise the input with the corpus's own statistics
        frames = torch.cat([m for m, _, _ in items], dim=-1)
        model.mel_mean.copy_(frames.mean(-1))
        model.mel_std.copy_(frames.std(-1).clamp(min=0.1))
    torch.manual_seed(tcfg.seed)
    dev = torch.device(device)
    batches = _LengthBatches(items, tcfg.max_frames, tcfg.seed, dev, augment=True, warp=warp,
                             mel_cfg=mel_cfg)
    task = CtcTask(model)
    trainer = Trainer(task, lambda net, batch, step: net(batch), batches.make, batches.load,
                      tcfg, out, device)
    history = trainer.fit(resume, progress)
    if trainer.rank == 0:
        recogniser = trainer.model.model.cpu().eval()
        training = {**(training or {}), "steps": trainer.step, "utterances": len(items),
                    "preset": preset, "init": str(init) if init else None, "vtlp": warp,
                    "init_copied": init_report,
                    "final_ctc_loss": recent_mean(history, "loss"),
                    "last_session_wall_s": trainer.last_session_wall_s,
                    "parameters": int(sum(p.numel() for p in recogniser.parameters()))}
        if valid:
            hyps = transcribe_mels(recogniser, [m for m, _, _ in valid], symbols["symbols"])
            training["valid"] = score([r for _, _, r in valid], hyps)
        recogniser.save(out, mel_cfg, symbols, training)
    return out


def initialise_recogniser(model: CtcRecogniser, symbols: dict, init: str | Path) -> dict:
    """Warm start from the recogniser in ``init``, which must have the same size. Every tensor
    but the output layer is copied; output rows are matched by symbol, and a letter the old
    table lacks starts from its base letter (``č`` from ``c``: the NFD form's first character),
    so an English recogniser starts a Czech one. Returns counts of what was copied."""
    import unicodedata

    from adavoice.errors import AdapterMismatchError

    initial, _, initial_symbols = CtcRecogniser.from_dir(resolve_asr_dir(init))
    if dataclasses.replace(initial.cfg, n_tokens=model.cfg.n_tokens) != model.cfg:
        raise AdapterMismatchError("the --init recogniser has another size", path=init,
                                   fix="use the same preset, or start without --init")
    old = list(initial_symbols.get("symbols", []))
    state = {k: v for k, v in initial.state_dict().items() if not k.startswith("out.")}
    model.load_state_dict(state, strict=False)
    rows = 0
    with torch.no_grad():
        for index, symbol in enumerate(symbols["symbols"]):
            base = unicodedata.normalize("NFD", symbol)[:1] if symbol else symbol
            source = symbol if symbol in old else base if base in old else None
            if source is not None:
                model.out.weight[index] = initial.out.weight[old.index(source)]
                model.out.bias[index] = initial.out.bias[old.index(source)]
                rows += 1
    return {"tensors": len(state), "output_rows": rows, "of": len(symbols["symbols"])}
