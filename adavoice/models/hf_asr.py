"""Pretrained recognisers from Hugging Face: a ``Wav2Vec2ForCTC`` folder on disk, optionally
with a peft LoRA adapter trained here, behind the surface of :class:`adavoice.models.asr.Recogniser`
(``load``, ``transcribe(paths) -> list[str]``, ``evaluate(data) -> dict``).

Why: the project's own CTC recogniser (adavoice.models.asr) is small and trained from scratch;
a pretrained wav2vec2 model that someone already downloaded is a much stronger intelligibility
judge, and a few hundred LoRA steps adapt it to a new voice or accent without touching (or
copying) its weights.

What it promises:

- Nothing is downloaded: every transformers / peft call reads the folder with
  ``local_files_only=True``, and only safetensors weights are read (a folder that holds only
  ``pytorch_model.bin`` is refused rather than unpickled).
- Greedy CTC decoding is done here (argmax, repeats merged, the tokenizer's pad as the blank,
  the word delimiter as a space). transformers' ``batch_decode(..., skip_special_tokens=True)``
  drops the blank *before* merging repeats and turns "a<pad>a" into "a", so it is not used.
- Text is compared and trained on in the project's normalisation: the language pack's (numbers
  spelt out) when the row's language has one, then case-folded with punctuation as word breaks;
  for training it is cased to the tokenizer's vocabulary (upper-case vocabularies exist), and a
  character the tokenizer lacks is an UnknownSymbolError naming it, never dropped.
- An adapter folder holds what peft writes (``adapter_config.json``,
  ``adapter_model.safetensors``, a README.md model card; never base weights, never pickles),
  plus ``adavoice_adapter.json`` recording the base folder, the sha256 of its config and of its
  weights, and the adapter file's own sha256: an adapter is refused (AdapterMismatchError) on
  another base, including a base with the same config but other weights.

>>> _words("It's 2 o'clock, Bob!", "und")
'its 2 oclock bob'
>>> _words("It's 2 o'clock, Bob!", "und", keep="'")
"it's 2 o'clock bob"
"""

from __future__ import annotations

import json
import os
import random
import re
import unicodedata
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from adavoice.errors import (
    AdapterMismatchError,
    ConfigError,
    DatasetError,
    MissingFileError,
    ModelFormatError,
    OutputError,
    UnknownSymbolError,
)

ARCHITECTURE = "Wav2Vec2ForCTC"
ADAPTER_KIND = "adavoice-hf-ctc-lora"
ADAPTER_FORMAT_VERSION = 1
ADAPTER_RECORD = "adavoice_adapter.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")

_APOSTROPHES = "'\u2019\u02bc"
_SPACES = re.compile(r"\s+")


# ---- the folders ------------------------------------------------------------------------------

def _read_config(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_hf_ctc_folder(path: str | Path) -> bool:
    """True for a Hugging Face folder whose ``config.json`` names the ``Wav2Vec2ForCTC``
    architecture (or, with no architectures listed, is a wav2vec2 model that ships a CTC
    tokenizer's ``vocab.json``). Reads one small JSON file; never raises."""
    folder = Path(path)
    config = _read_config(folder) if folder.is_dir() else None
    if config is None:
        return False
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures:
        return ARCHITECTURE in architectures
    return config.get("model_type") == "wav2vec2" and (folder / "vocab.json").is_file()


def _weights_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.safetensors") if p.is_file())


def base_fingerprint(folder: str | Path) -> dict:
    """{"config_sha256", "weights_sha256"} of a HF folder: the sha256 of ``config.json``, and
    one over every ``*.safetensors`` file's name and sha256 (sharded folders included)."""
    import hashlib

    from adavoice.atomic import sha256_file

    folder = Path(folder)
    digest = hashlib.sha256()
    for path in _weights_files(folder):
        digest.update(f"{path.name}:{sha256_file(path)}\n".encode())
    return {"config_sha256": sha256_file(folder / "config.json"),
            "weights_sha256": digest.hexdigest()}


def _check_base_folder(folder: Path) -> None:
    """MissingFileError / ModelFormatError before transformers sees the folder."""
    if not folder.is_dir():
        raise MissingFileError("no such Hugging Face model folder", path=folder)
    if not (folder / "config.json").is_file():
        raise MissingFileError("not a Hugging Face model folder: no config.json", path=folder,
                               fix="point at the folder that save_pretrained wrote")
    if _read_config(folder) is None:
        raise ModelFormatError("config.json is not a JSON object", path=folder / "config.json",
                               fix="copy the whole model folder again")
    if not is_hf_ctc_folder(folder):
        raise ModelFormatError(f"not a Hugging Face {ARCHITECTURE} folder (its config.json "
                               f"names no {ARCHITECTURE} architecture)", path=folder,
                               fix="use a wav2vec2 CTC model, or an adavoice ASR folder")
    if not _weights_files(folder):
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise ModelFormatError(f"the weights are pickle files ({', '.join(pickled)}); "
                                   "adavoice only reads safetensors", path=folder,
                                   fix="convert once, where you trust the file: "
                                       "model.save_pretrained(folder, safe_serialization=True)")
        raise MissingFileError("the folder holds no *.safetensors weights", path=folder,
                               fix="copy the whole model folder again")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:limit]


# ---- text -------------------------------------------------------------------------------------

_PACKS: dict[str, object] = {}


def _pack(language: str):
    """The language pack for ``language``, or None when none is installed (cached)."""
    if language not in _PACKS:
        from adavoice.errors import AdavoiceError
        from adavoice.text.pack import LanguagePack, available_codes

        pack = None
        if language in available_codes():
            try:
                pack = LanguagePack.load(language)
            except AdavoiceError:
                pack = None
        _PACKS[language] = pack
    return _PACKS[language]


def _words(text: str, language: str, keep: str = "", emit: bool = False) -> str:
    """``text`` as words: the language pack's normalisation when ``language`` has one (numbers
    spelt out; ``emit`` reports folded or dropped letters as TextWarning), then NFKC and case
    folding; apostrophes removed unless in ``keep``, other punctuation and symbols a space."""
    pack = _pack(language)
    if pack is not None:
        from adavoice.text.normalize import normalize_text

        text = normalize_text(text, pack, emit=emit).text
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = []
    for ch in text:
        if ch in keep:
            kept.append(ch)
        elif ch in _APOSTROPHES:
            continue
        elif ch.isspace() or unicodedata.category(ch)[0] in "PSZ":
            kept.append(" ")
        else:
            kept.append(ch)
    return _SPACES.sub(" ", "".join(kept)).strip()


class _Spelling:
    """Text -> token ids in a CTC tokenizer's vocabulary, one character per token, a space as
    the word delimiter; cased to the vocabulary (an all-upper-case vocabulary gets upper case)."""

    def __init__(self, tokenizer, outputs: int):
        # a token the CTC head has no output for (an id past vocab_size) cannot be a target
        self.vocab = {t: i for t, i in tokenizer.get_vocab().items() if i < outputs}
        self.delimiter = tokenizer.word_delimiter_token
        letters = [t for t in self.vocab if len(t) == 1 and t.isalpha()]
        self.upper = any(t.isupper() for t in letters) and not any(t.islower() for t in letters)
        self.keep = "".join(t for t in self.vocab if len(t) == 1 and t in _APOSTROPHES)

    def text(self, raw: str, language: str) -> str:
        words = _words(raw, language, keep=self.keep, emit=True)
        return words.upper() if self.upper else words

    def missing(self, text: str) -> set[str]:
        return {ch for ch in text if (self.delimiter if ch == " " else ch) not in self.vocab}

    def ids(self, text: str) -> list[int]:
        return [self.vocab[self.delimiter if ch == " " else ch] for ch in text]


def _decode(tokenizer, ids: list[int]) -> str:
    """Merged, blank-free ids -> text: special tokens dropped, the delimiter a space."""
    tokens = tokenizer.convert_ids_to_tokens(ids)
    special = set(tokenizer.all_special_tokens) - {tokenizer.word_delimiter_token}
    pieces = [" " if t == tokenizer.word_delimiter_token else t for t in tokens
              if t is not None and t not in special]  # None: an output with no token
    text = _SPACES.sub(" ", "".join(pieces)).strip()
    return text.lower() if getattr(tokenizer, "do_lower_case", False) else text


# ---- corpora ----------------------------------------------------------------------------------

def _corpus(data: Path, split: str | None = None):
    """(manifest, transcribed rows) of a manifest folder or a folder of audio with
    ``metadata.csv``; ``split``: that split's rows when the manifest has any."""
    from adavoice.data.manifest import Manifest
    from adavoice.data.readers import read_folder

    if (data / "manifest.jsonl").is_file():
        manifest = Manifest.load(data)
    else:
        manifest = Manifest(read_folder(data, "und"), data)
    rows = list(manifest)
    if split is not None:
        rows = list(manifest.split(split)) or rows
    return manifest, [row for row in rows if row.text]


# ---- the recogniser ---------------------------------------------------------------------------

class HfCtcRecogniser:
    """A Hugging Face ``Wav2Vec2ForCTC`` (optionally with a LoRA adapter) with its processor:
    ``transcribe`` audio files, ``evaluate`` a corpus. ``model`` is the transformers model, or
    the peft model wrapping it when an adapter is loaded."""

    def __init__(self, model, processor, folder: Path, adapter: Path | None = None,
                 device: str = "cpu"):
        self.model, self.processor = model.eval(), processor
        self.folder, self.adapter, self.device = Path(folder), adapter, torch.device(device)
        self.tokenizer = processor.tokenizer
        self.feature_extractor = processor.feature_extractor
        self.sample_rate_hz = int(self.feature_extractor.sampling_rate)
        self.outputs = int(model.config.vocab_size)
        blank = model.config.pad_token_id  # what transformers' own CTC loss uses as the blank
        self.blank = int(self.tokenizer.pad_token_id if blank is None else blank)

    @classmethod
    def load(cls, folder: str | Path, adapter: str | Path | None = None,
             device: str = "cpu") -> "HfCtcRecogniser":
        """The model and processor of a HF folder (``local_files_only``, safetensors only),
        with the LoRA adapter written by :func:`adapt_lora` when ``adapter`` is given."""
        from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its bars would mix with transcripts on stdout
        folder = Path(folder)
        _check_base_folder(folder)
        try:
            processor = Wav2Vec2Processor.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ...
            raise ModelFormatError(f"cannot read the tokenizer and feature extractor "
                                   f"({_one_line(exc)})", path=folder,
                                   fix="the folder needs vocab.json and the feature "
                                       "extractor's config (save the Wav2Vec2Processor too)"
                                   ) from exc
        try:
            model = Wav2Vec2ForCTC.from_pretrained(str(folder), local_files_only=True,
                                                   use_safetensors=True)
        except Exception as exc:
            raise ModelFormatError(f"cannot load the {ARCHITECTURE} model ({_one_line(exc)})",
                                   path=folder, fix="copy the whole model folder again") from exc
        blank = model.config.pad_token_id
        blank = processor.tokenizer.pad_token_id if blank is None else blank
        if blank is None or not 0 <= blank < model.config.vocab_size:
            raise ModelFormatError(f"the CTC blank (pad token id {blank}) is not one of the "
                                   f"{model.config.vocab_size} outputs", path=folder,
                                   fix="set pad_token_id in config.json to the tokenizer's pad")
        adapter_path = None
        if adapter is not None:
            adapter_path = Path(adapter)
            model = _with_adapter(model, folder, adapter_path)
        return cls(model.to(device), processor, folder, adapter_path, device)

    # ---- audio -> text ------------------------------------------------------------------------
    def waves(self, paths) -> list[np.ndarray]:
        from adavoice.audio import load_audio

        return [load_audio(p, self.sample_rate_hz) for p in paths]

    def _inputs(self, waves: list[np.ndarray]) -> tuple[dict, torch.Tensor]:
        """Model inputs of a batch, and each row's number of output frames."""
        features = self.feature_extractor(waves, sampling_rate=self.sample_rate_hz,
                                          padding=True, return_tensors="pt")
        inputs = {"input_values": features["input_values"].to(self.device)}
        mask = features.get("attention_mask")
        samples = torch.tensor([len(w) for w in waves])
        if mask is not None:
            inputs["attention_mask"] = mask.to(self.device)
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return inputs, base._get_feat_extract_output_lengths(samples).long()

    def _batches(self, waves: list[np.ndarray], batch: int) -> list[list[int]]:
        """Indices by length. A model whose feature extractor returns no attention mask
        (group-norm wav2vec2) hears padding, so it gets one utterance at a time."""
        if not self.feature_extractor.return_attention_mask:
            batch = 1
        order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
        return [order[i:i + batch] for i in range(0, len(order), batch)]

    @torch.no_grad()
    def transcribe_waves(self, waves: list[np.ndarray], batch: int = 8) -> list[str]:
        from adavoice.models.asr import greedy_ids

        self.model.eval()
        out: list[str | None] = [None] * len(waves)
        for indices in self._batches(waves, batch):
            inputs, frames = self._inputs([waves[i] for i in indices])
            logits = self.model(**inputs).logits.float().cpu()
            frames = frames.clamp(max=logits.shape[1])
            for index, ids in zip(indices, greedy_ids(logits, frames, blank=self.blank),
                                  strict=True):
                out[index] = _decode(self.tokenizer, ids)
        return out  # type: ignore[return-value]

    def __call__(self, samples: np.ndarray, sample_rate_hz: int) -> str:
        """One transcript of mono float32 samples: the ``Recognizer`` protocol of
        adavoice.evaluate.text_metrics, so the intelligibility metrics can use this model."""
        from adavoice.audio import resample

        wave = resample(np.asarray(samples, dtype=np.float32), sample_rate_hz,
                        self.sample_rate_hz)
        return self.transcribe_waves([wave])[0]

    def transcribe(self, paths, batch: int = 8) -> list[str]:
        """Greedy transcripts of audio files (any rate: resampled to the model's)."""
        return self.transcribe_waves(self.waves(paths), batch)

    def evaluate(self, data: str | Path) -> dict:
        """{"cer", "wer" (fractions, pooled), "utterances", "rows": per-utterance} on every
        transcribed utterance of ``data`` (a manifest folder, or audio with ``metadata.csv``);
        references in the project's normalisation (see the module docstring)."""
        from adavoice.train.asr import score_rows

        data = Path(data)
        manifest, candidates = _corpus(data)
        rows, refs = [], []
        for row in candidates:
            reference = _words(row.text, row.language)
            if reference:
                rows.append(row)
                refs.append(reference)
        if not rows:
            raise DatasetError("no transcribed utterances to score", path=data,
                               fix="a manifest folder, or audio with metadata.csv")
        return score_rows(rows, refs, self.transcribe([manifest.audio_path(r) for r in rows]))

    def ctc_loss(self, waves: list[np.ndarray], targets: list[list[int]]) -> torch.Tensor:
        """Mean CTC loss (per target token, as torch's ``reduction="mean"``) of one batch; in
        the model's current mode (train: with its dropout and masking)."""
        inputs, frames = self._inputs(waves)
        logits = self.model(**inputs).logits
        frames = frames.clamp(max=logits.shape[1]).to(self.device)
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)
        flat = torch.tensor([t for ids in targets for t in ids], dtype=torch.long,
                            device=self.device)
        lengths = torch.tensor([len(ids) for ids in targets], device=self.device)
        return torch.nn.functional.ctc_loss(log_probs, flat, frames, lengths, blank=self.blank,
                                            zero_infinity=True)


# ---- LoRA -------------------------------------------------------------------------------------

@contextmanager
def _quiet_peft():
    """peft wraps a model by asking transformers 5 a deprecated question
    (``is_gradient_checkpointing``): that FutureWarning is theirs, not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                category=FutureWarning)
        yield


def _adapter_record(adapter: Path) -> dict:
    from adavoice.config import read_json

    path = adapter / ADAPTER_RECORD
    if not adapter.is_dir():
        raise MissingFileError("no such adapter folder", path=adapter)
    if not path.is_file():
        raise ModelFormatError(f"not an adavoice LoRA adapter: no {ADAPTER_RECORD}",
                               path=adapter, fix="adapt with adavoice.models.hf_asr.adapt_lora, "
                                                 "which records the base it was made for")
    try:
        record = read_json(path, "adapter record")
    except ConfigError as exc:
        raise ModelFormatError(exc.message, path=path) from exc
    if not isinstance(record, dict) or record.get("kind") != ADAPTER_KIND:
        raise ModelFormatError(f"not an adapter record (kind is not {ADAPTER_KIND!r})",
                               path=path)
    if record.get("format_version") != ADAPTER_FORMAT_VERSION:
        raise ModelFormatError(f"format_version {record.get('format_version')!r}, this "
                               f"adavoice reads {ADAPTER_FORMAT_VERSION}", path=path)
    if not isinstance(record.get("base"), dict) or not isinstance(
            record.get("adapter_sha256"), str):
        raise ModelFormatError("the adapter record names no base or no adapter_sha256",
                               path=path, fix="adapt again with this adavoice")
    return record


def _with_adapter(model, folder: Path, adapter: Path):
    """``model`` wrapped by the peft adapter in ``adapter``, after checking that it was made
    for this base and that its safetensors file is the one recorded."""
    from peft import PeftModel

    from adavoice.atomic import sha256_file

    record = _adapter_record(adapter)
    weights = adapter / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise MissingFileError(f"the adapter has no {ADAPTER_WEIGHTS}", path=adapter,
                               fix="copy the whole adapter folder again")
    if sha256_file(weights) != record["adapter_sha256"]:
        raise ModelFormatError("the adapter weights are damaged: their checksum is not the "
                               "recorded one", path=weights, fix="copy the adapter folder again")
    recorded, actual = record["base"], base_fingerprint(folder)
    for key, what in (("config_sha256", "config"), ("weights_sha256", "weights")):
        if recorded.get(key) != actual[key]:
            raise AdapterMismatchError(f"the adapter was made for another base model (the "
                                       f"{what} differs from {recorded.get('folder')!r})",
                                       path=adapter)
    try:
        with _quiet_peft():
            return PeftModel.from_pretrained(model, str(adapter), is_trainable=False,
                                             local_files_only=True)
    except Exception as exc:
        raise ModelFormatError(f"cannot load the LoRA adapter ({_one_line(exc)})",
                               path=adapter) from exc


def _training_items(recogniser: HfCtcRecogniser, data: Path):
    """(wave, target ids, target text) per transcribed utterance of the train split (every
    row when there is none). UnknownSymbolError names characters the tokenizer lacks."""
    spelling = _Spelling(recogniser.tokenizer, recogniser.outputs)
    manifest, rows = _corpus(data, split="train")
    texts, missing = [], {}
    for row in rows:
        text = spelling.text(row.text, row.language)
        for ch in spelling.missing(text):
            missing.setdefault(ch, f"{row.id} {text[:40]!r}")
        texts.append(text)
    if missing:  # the normalised text shows where a letter came from ("3" -> "three")
        shown = ", ".join(f"{ch!r} ({unicodedata.name(ch, 'unnamed')}, e.g. in {where})"
                          for ch, where in sorted(missing.items())[:8])
        raise UnknownSymbolError(f"the tokenizer of {recogniser.folder.name} has no token for "
                                 f"{shown}", path=data,
                                 fix="spell those characters out in the transcripts, or "
                                     "adapt a model whose vocabulary has them")
    pairs = [(row, text) for row, text in zip(rows, texts, strict=True) if text]
    if not pairs:
        raise DatasetError("no transcribed utterances to adapt on", path=data,
                           fix="a manifest folder, or audio with metadata.csv")
    waves = recogniser.waves([manifest.audio_path(row) for row, _ in pairs])
    return [(wave, spelling.ids(text), text)
            for wave, (_, text) in zip(waves, pairs, strict=True)]


def adapt_lora(folder: str | Path, data: str | Path, out: str | Path, steps: int = 200,
               rank: int = 8, alpha: int = 16, learning_rate: float = 5e-4,
               target_modules: tuple[str, ...] = ("q_proj", "v_proj"), batch_size: int = 8,
               dropout: float = 0.0, seed: int = 0, device: str = "cpu",
               progress: bool = False) -> HfCtcRecogniser:
    """Adapt the HF ``Wav2Vec2ForCTC`` in ``folder`` to ``data`` (its train split, or every
    transcribed row) with peft LoRA on ``target_modules``: ``steps`` AdamW steps on batches of
    ``batch_size`` utterances, mean CTC loss with the tokenizer's pad as the blank. Only the
    adapter is written to ``out`` (peft's safetensors files and :data:`ADAPTER_RECORD`). Returns
    the recogniser holding the adapted model in memory."""
    from peft import LoraConfig, get_peft_model

    from adavoice.artifacts import write_json
    from adavoice.atomic import sha256_file

    folder, data, out = Path(folder), Path(data), Path(out)
    if steps < 1 or rank < 1 or batch_size < 1 or learning_rate <= 0:
        raise ConfigError("steps, rank and batch_size must be >= 1 and the learning rate > 0")
    if out.resolve() == folder.resolve() or (out / "config.json").is_file():
        raise OutputError("the adapter folder must not be a model folder", path=out,
                          fix="give --out a new folder")
    recogniser = HfCtcRecogniser.load(folder, device=device)
    items = _training_items(recogniser, data)
    fingerprint = base_fingerprint(folder)

    torch.manual_seed(seed)
    lora = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(target_modules),
                      lora_dropout=dropout, bias="none")
    try:
        with _quiet_peft():
            model = get_peft_model(recogniser.model, lora)
    except ValueError as exc:  # peft: target modules not found in the base model
        raise ConfigError(f"LoRA targets {list(target_modules)} do not fit this model "
                          f"({_one_line(exc, 160)})", path=folder,
                          fix="wav2vec2 attention has q_proj, k_proj, v_proj, out_proj") from exc
    recogniser.model = model
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=learning_rate)
    rng = random.Random(seed)
    order: list[int] = []
    losses: list[float] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="LoRA", unit="step")
    model.train()
    for _ in range(steps):
        if len(order) < batch_size:
            more = list(range(len(items)))
            rng.shuffle(more)
            order += more
        chosen = [items[i] for i in order[:batch_size]]
        del order[:batch_size]
        loss = recogniser.ctc_loss([w for w, _, _ in chosen], [ids for _, ids, _ in chosen])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimiser.step()
        losses.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    model.eval()

    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ADAPTER_RECORD).unlink(missing_ok=True)  # no stale record over new weights
        model.save_pretrained(str(out), safe_serialization=True)
    except OSError as exc:
        raise OutputError(f"cannot write the adapter ({exc.strerror or exc})", path=out) from exc
    pickled = sorted(p.name for p in out.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled or not (out / ADAPTER_WEIGHTS).is_file():
        raise ModelFormatError(f"peft did not write {ADAPTER_WEIGHTS} alone "
                               f"(found {pickled})", path=out)
    # safetensors' save_file leaves a 0o600 file: give it the mode of peft's JSON beside it
    try:
        os.chmod(out / ADAPTER_WEIGHTS, (out / "adapter_config.json").stat().st_mode & 0o777)
    except OSError:  # a file system without modes: nothing to fix
        pass
    tail = losses[-max(1, min(10, steps // 5)):]
    record = {"kind": ADAPTER_KIND, "format_version": ADAPTER_FORMAT_VERSION,
              "base": {"folder": str(folder.resolve()), "architecture": ARCHITECTURE,
                       **fingerprint},
              "lora": {"rank": rank, "alpha": alpha, "target_modules": list(target_modules),
                       "dropout": dropout},
              "training": {"data": str(data), "steps": steps, "utterances": len(items),
                           "batch_size": batch_size, "learning_rate": learning_rate,
                           "seed": seed, "first_ctc_loss": losses[0],
                           "final_ctc_loss": sum(tail) / len(tail),
                           "trainable_parameters": int(sum(p.numel() for p in trainable))},
              "adapter_sha256": sha256_file(out / ADAPTER_WEIGHTS)}
    write_json(out / ADAPTER_RECORD, record)
    recogniser.adapter = out
    return recogniser


# ---- one entry point for both kinds of recogniser ---------------------------------------------

def load_recogniser(name_or_path: str | Path, adapter: str | Path | None = None,
                    device: str = "cpu", decoder: str = "auto"):
    """The recogniser a path names: a HF ``Wav2Vec2ForCTC`` folder (or a model folder whose
    ``asr/`` is one) as :class:`HfCtcRecogniser`; an adapter folder written by
    :func:`adapt_lora` on the base it records; anything else through
    :meth:`adavoice.models.asr.Recogniser.load` (``decoder``: see there; a HF model decodes
    greedily)."""
    from adavoice.models.asr import DECODERS, Recogniser, resolve_asr_dir

    if decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {decoder!r}", fix=" | ".join(DECODERS))

    path = Path(name_or_path)
    if adapter is None and (path / ADAPTER_RECORD).is_file():
        record = _adapter_record(path)
        return HfCtcRecogniser.load(record["base"].get("folder", ""), adapter=path,
                                    device=device)
    folder = resolve_asr_dir(name_or_path)
    if is_hf_ctc_folder(folder):
        return HfCtcRecogniser.load(folder, adapter=adapter, device=device)
    if adapter is not None:
        raise ConfigError("a LoRA adapter applies to a Hugging Face wav2vec2 folder only",
                          path=folder, fix="leave out the adapter for an adavoice recogniser")
    return Recogniser.load(folder, decoder=decoder)
