"""The LRSpeech bootstrap (Xu et al., KDD 2020; DESIGN §7): a TTS and a CTC ASR for a new
language from a few paired sentences, unpaired speech and unpaired text.

Stages, in order; each is resumable and, once done, recorded in ``work/state.json``:

1. ``finetune``: the TTS starts from ``init`` (a base of a rich language: token rows of shared
   symbols, the aligner, encoder and decoder are copied) and the ASR from the recogniser it
   carries in ``asr/`` (output rows matched by symbol); both train on the paired data plus the
   low-quality pairs.
2. ``round-1`` ... ``round-N``, dual transformation: the ASR of the round before transcribes
   the unpaired speech and the TTS trains on those pseudo-pairs; the TTS of the round before
   speaks a fresh slice of the unpaired text in every voice it has, and the ASR trains on
   those mels (a TTS mel is what the ASR reads; no vocoder is in the loop). The real pairs are
   mixed into every round. Both start from the round before.
3. ``distill``: the last TTS (teacher) speaks another slice of the text in the target voice;
   a sample is kept only when every phoneme got at least one frame and the last ASR reads it
   back under ``distill_max_cer``; the kept mels become audio (``distill_renderer``) and a
   student TTS for the target voice trains on them plus the real pairs, starting from the
   teacher. The ASR student trains on the real pairs, the teacher TTS's multi-voice mels and
   the unpaired speech under the teacher ASR's labels, keeping the most confident
   ``asr_keep_share``.

After the release choice (:meth:`Bootstrap.select_release`), a GAN mel post-filter trains for
the released TTS on its own mels of the target's paired sentences and is installed in
``out/postfilter`` unless it makes the speech read worse (:meth:`Bootstrap._postfilter`;
``postfilter_steps`` 0 skips it).

A killed run continues at the stage it reached and, inside a stage, at the training step of
its last checkpoint (the loop's own resume); pseudo-labels are written once per round.
After every stage a row goes to ``report.json`` / ``report.md`` (see adavoice.bootstrap.report).
:func:`speak`, the batch synthesis of every stage, the transcriptions and the rendering of the
distillation audio share their work across torchrun ranks (:func:`shard_map`; each rank writes
the audio files of its share). Under torchrun (``torchrun --nproc_per_node N -m
adavoice.cli.main lang bootstrap ...``) every rank runs the stages; the trainings are the
loop's DDP, and rank 0 alone writes the state, the report, the pseudo-labels, the training
manifests and the release, with a barrier wherever the other ranks read what it wrote.
The result: ``out`` is a base model folder (``adavoice synth --model OUT``) with the ASR in
``out/asr`` (beside it ``lm.json``, a character n-gram of the unpaired text that its beam search
decodes with) and, for a language without an installed pack, the pack embedded in both. The
pseudo-labels of the unpaired speech are decoded with that beam search and n-gram too
(``pseudo_label_decoder``); the stages' measurements and the read-back filter decode greedily.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from adavoice.atomic import atomic_write_bytes
from adavoice.bootstrap.data import Inputs, read_inputs
from adavoice.errors import ConfigError, DatasetError
from adavoice.models.asr import LM_FILE
from adavoice.train.settings import POSTFILTER_RUN, TrainConfig

STATE_FORMAT = 1
# settings added after runs were begun, at the values that reproduce how those runs worked: a
# stored run without the key continues only when the command gives it this value
LEGACY_SETTINGS = {"pseudo_label_decoder": "greedy", "asr_warp": 0.0,
                   "distill_renderer": "griffin-lim", "release_tts": "last",
                   "selection_texts": 200, "postfilter_steps": 0}
LM_ORDER = 5  # characters of context + 1 for the released recogniser's n-gram
# an earlier stage's TTS is released instead of the last one's only when the fine-tune ASR
# reads it better by more than this many paired standard errors (Bootstrap.select_release)
SELECTION_SE = 2.0


def target_first(model, cfg, target: str) -> None:
    """Make ``target`` speaker 0, the voice a release speaks in when no speaker is named
    (``adavoice synth --model OUT``). A round's TTS holds every voice of the run, sorted by
    name, so the target is rarely first. Only the two speaker tables are permuted: every
    voice's mels stay the same, and the other voices stay in the model, in their order."""
    if target not in cfg.speakers or cfg.speakers[0] == target:
        return
    order = [cfg.speakers.index(target)] + [i for i, s in enumerate(cfg.speakers) if s != target]
    with torch.no_grad():
        for table in (model.speaker_embedding.weight, model.speaker_utterance_vectors):
            table.copy_(table[order])  # indexing by a list copies
    cfg.speakers = [cfg.speakers[i] for i in order]


@dataclass(frozen=True)
class BootstrapConfig:
    """Step counts and filters. The defaults fit the whole bootstrap of the Italian benchmark
    (50 / 198 / 2,598 utterances), post-filter included, in 84 minutes on a 2-core CPU; see
    BENCHMARKS.md."""

    rounds: int = 2
    tts_finetune_steps: int = 800
    asr_finetune_steps: int = 500
    tts_round_steps: int = 300
    asr_round_steps: int = 300
    distill_tts_steps: int = 400
    distill_asr_steps: int = 300
    texts_per_round: int = 600  # unpaired sentences the TTS speaks for the ASR each round
    distill_texts: int = 600  # sentences the teacher speaks for the student TTS
    distill_max_cer: float = 0.3
    asr_keep_share: float = 0.7
    # how the ASR labels the unpaired speech (rounds and the ASR student): "beam" is CTC prefix
    # beam search with the character n-gram of the unpaired text, "greedy" the best path alone.
    # The read-back filter and the report's measurements always decode greedily (an n-gram
    # would hide what the audio does not say).
    pseudo_label_decoder: str = "beam"
    asr_warp: float = 0.0  # VTLP of the ASR's training mels, factors 1 +- this (0: off)
    # what turns the teacher's kept mels into the student's audio: "griffin-lim" or
    # "universal" (the HiFi-GAN of adavoice.models.universal, about 5x the time)
    distill_renderer: str = "griffin-lim"
    # which stage's TTS the release takes: "select" the one whose speech of held-back unpaired
    # text the frozen fine-tune ASR reads best (see Bootstrap.select_release), "last" the
    # last stage's. The release's ASR is always the last stage's.
    release_tts: str = "select"
    selection_texts: int = 200  # held-back unpaired sentences that "select" reads
    # a GAN mel post-filter for the released TTS, trained on its mels of the target's paired
    # sentences (adavoice.train.mel_postfilter; BENCHMARKS.md "A post-filter for the Czech
    # model"); 0: none
    postfilter_steps: int = 2000
    asr_preset: str = "small"  # when init carries no ASR; else the size of init's ASR
    asr_max_frames: int = 12000
    tts_max_frames: int = 6000
    tts_tokenizer: str | None = None  # None: phonemes when the pack has them, else graphemes
    learning_rate: float = 1e-3
    seed: int = 0

    @classmethod
    def tiny(cls, **overrides) -> "BootstrapConfig":
        """For tests: a few steps per stage and tiny models."""
        return cls(**{"rounds": 1, "tts_finetune_steps": 3, "asr_finetune_steps": 3,
                      "tts_round_steps": 2, "asr_round_steps": 2, "distill_tts_steps": 2,
                      "distill_asr_steps": 2, "texts_per_round": 4, "distill_texts": 4,
                      "selection_texts": 4, "postfilter_steps": 2,
                      "distill_max_cer": 10.0, "asr_preset": "tiny", **overrides})

    def __post_init__(self):
        if self.pseudo_label_decoder not in ("greedy", "beam"):
            raise ConfigError(f"unknown pseudo-label decoder {self.pseudo_label_decoder!r}",
                              fix="use greedy or beam")
        if not 0 <= self.asr_warp < 0.5:
            raise ConfigError(f"asr_warp must be in [0, 0.5), got {self.asr_warp}")
        if self.release_tts not in ("select", "last"):
            raise ConfigError(f"unknown release choice {self.release_tts!r}",
                              fix="use select or last")
        if self.selection_texts < 1:
            raise ConfigError(f"selection_texts must be at least 1, got {self.selection_texts}")
        if self.postfilter_steps < 0:
            raise ConfigError(f"postfilter_steps must be 0 or more, got {self.postfilter_steps}")
        if self.distill_renderer not in ("griffin-lim", "universal"):
            raise ConfigError(f"unknown distillation renderer {self.distill_renderer!r}",
                              fix="use griffin-lim or universal")

    def stages(self) -> list[str]:
        return ["finetune"] + [f"round-{r}" for r in range(1, self.rounds + 1)] + ["distill"]

    def planned_steps(self, stage: str) -> int:
        if stage == "finetune":
            return self.tts_finetune_steps + self.asr_finetune_steps
        if stage == "distill":
            return self.distill_tts_steps + self.distill_asr_steps
        return self.tts_round_steps + self.asr_round_steps


class Bootstrap:
    """One bootstrap into ``out``; :meth:`run` does (or finishes) every stage."""

    def __init__(self, language: str, out: Path, paired: Path, unpaired_speech: Path,
                 unpaired_text: Path, init: str | Path = "demo", low_quality: Path | None = None,
                 evaluation: list[Path] = (), judge: str | Path | None = None,
                 config: BootstrapConfig = BootstrapConfig(), progress: bool = True,
                 device: str = "cpu"):
        from adavoice.models.asr import resolve_asr_dir
        from adavoice.models.base_model import resolve_model_dir

        self.out, self.cfg, self.progress, self.device = Path(out), config, progress, device
        self.work = self.out / "work"
        self.init = resolve_model_dir(init)
        self.init_asr = resolve_asr_dir(self.init) if (self.init / "asr").is_dir() else None
        self.judge = judge  # resolved when first used: it may still be training
        self.packs_dir, self.pack = self._language_pack(language, unpaired_text, paired)
        self.inputs: Inputs = read_inputs(language, self.pack, paired, unpaired_speech,
                                          unpaired_text, low_quality, evaluation)
        self.fingerprint = {"language": language, "paired": str(Path(paired).resolve()),
                            "unpaired_speech": str(Path(unpaired_speech).resolve()),
                            "unpaired_text": str(Path(unpaired_text).resolve()),
                            "low_quality": str(Path(low_quality).resolve()) if low_quality
                            else None, "init": str(self.init),
                            "config": dataclasses.asdict(config)}
        self.tts_tokenizer = config.tts_tokenizer or (
            "phonemes" if self.pack.phonemes and self.pack.espeak_voice else "graphemes")
        self._real_cache: dict[str, torch.Tensor] = {}
        self._frontend = None
        self._recognisers: dict[tuple, tuple] = {}
        self._lm = None
        self._processor = None
        self.rank, self.world = 0, 1  # set by run() (torchrun)

    # ---- language ------------------------------------------------------------------------------
    def _language_pack(self, language: str, text_file: Path, paired: Path):
        """(packs_dir or None, pack): the installed pack, else one made from the unpaired text
        and the paired transcripts (written to ``out/language`` and embedded in the models'
        symbol tables)."""
        from adavoice.bootstrap.data import paired_texts, read_text
        from adavoice.bootstrap.pack import new_pack, write_pack
        from adavoice.errors import UnknownLanguageError
        from adavoice.text.pack import LanguagePack

        try:
            return None, LanguagePack.load(language)
        except UnknownLanguageError:
            pass
        packs_dir = self.out / "language"
        if (packs_dir / language / "pack.json").is_file():
            return packs_dir, LanguagePack.load(language, packs_dir)
        lines = read_text(text_file) + paired_texts(paired, language)
        pack = new_pack(language, lines)
        write_pack(pack, packs_dir)
        return packs_dir, LanguagePack.load(language, packs_dir)

    # ---- state ---------------------------------------------------------------------------------
    def _state(self) -> dict:
        path = self.work / "state.json"
        if not path.is_file():
            return {"format": STATE_FORMAT, "inputs": self.fingerprint, "done": {}}
        state = json.loads(path.read_text(encoding="utf-8"))
        stored = state.get("inputs") or {}
        if isinstance(stored.get("config"), dict):
            stored = {**stored, "config": {**LEGACY_SETTINGS, **stored["config"]}}
        if stored != self.fingerprint:
            differ = sorted({k for k in stored.keys() | self.fingerprint.keys()
                             if k != "config" and stored.get(k) != self.fingerprint.get(k)}
                            | {k for k in stored.get("config", {}).keys()
                               | self.fingerprint["config"].keys()
                               if stored.get("config", {}).get(k)
                               != self.fingerprint["config"].get(k)})
            raise ConfigError("this --out holds a bootstrap of other inputs or settings "
                              f"({', '.join(differ)} differ)", path=path,
                              fix="use another --out, or the same command as before to "
                                  "continue it")
        return state

    def _save_state(self, state: dict) -> None:
        if self.rank != 0:
            return
        self.work.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.work / "state.json",
                           (json.dumps(state, indent=2, ensure_ascii=False) + "\n").encode())

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> Path:
        from adavoice.bootstrap.report import write_report
        from adavoice.train.loop import distributed_context

        self.rank, self.world = distributed_context(self.device)
        state = self._state()
        self._save_state(state)
        stages = self.cfg.stages()
        started = time.perf_counter()
        done_steps = sum(self.cfg.planned_steps(s) for s in stages if s in state["done"])
        total_steps = sum(self.cfg.planned_steps(s) for s in stages)
        session_steps = 0
        for index, stage in enumerate(stages):
            if stage in state["done"]:
                continue
            self._sync()  # every rank sees the files of the stage before
            elapsed = time.perf_counter() - started
            eta = (elapsed / session_steps * (total_steps - done_steps)) if session_steps else None
            self._say(f"bootstrap: stage {index + 1}/{len(stages)} {stage} "
                      f"({done_steps}/{total_steps} steps, {_clock(elapsed)} elapsed"
                      + (f", ETA {_clock(eta)}" if eta is not None else "") + ")")
            stage_start = time.perf_counter()
            row = self._run_stage(stage, index)
            row["wall_s"] = round(time.perf_counter() - stage_start, 1)
            state["done"][stage] = row
            self._save_state(state)
            if self.rank == 0:
                write_report(self.out, [state["done"][s] for s in stages if s in state["done"]],
                             self.inputs.summary(), self.fingerprint)
            done_steps += self.cfg.planned_steps(stage)
            session_steps += self.cfg.planned_steps(stage)
        self._sync()
        if "release" not in state:
            if self.cfg.release_tts == "select":
                self._say("bootstrap: choosing the released TTS (the fine-tune ASR reads "
                          "each stage's speech of held-back text)")
            state["release"] = self.select_release()
            self._save_state(state)
            if self.rank == 0:
                write_report(self.out, [state["done"][s] for s in stages], self.inputs.summary(),
                             self.fingerprint, release=state["release"])
        # the release is written once: rewriting it after its post-filter was trained would
        # change the weights that filter was made for (a run from before "released" was kept
        # counts as released once its post-filter step is recorded)
        if self.rank == 0 and not state.get("released") and "postfilter" not in state:
            self._release(state["release"])
            state["released"] = True
            self._save_state(state)
        self._sync()
        if self.cfg.postfilter_steps and "postfilter" not in state:
            self._say(f"bootstrap: a mel post-filter for the released TTS "
                      f"({self.cfg.postfilter_steps} steps, {_clock(time.perf_counter() - started)}"
                      " elapsed)")
            stage_start = time.perf_counter()
            state["postfilter"] = self._postfilter()
            state["postfilter"]["wall_s"] = round(time.perf_counter() - stage_start, 1)
            self._save_state(state)
            if self.rank == 0:
                write_report(self.out, [state["done"][s] for s in stages], self.inputs.summary(),
                             self.fingerprint, release=state["release"],
                             postfilter=state["postfilter"])
        self._say(f"bootstrap: done in {_clock(time.perf_counter() - started)}: {self.out}")
        return self.out

    def _sync(self) -> None:
        """A barrier under torchrun: what rank 0 wrote before it is there for every rank."""
        if self.world > 1:
            torch.distributed.barrier()

    def _say(self, line: str) -> None:
        if self.progress and self.rank == 0:
            import sys

            print(line, file=sys.stderr, flush=True)

    def _stage_dir(self, stage: str) -> Path:
        return self.work / stage

    def _previous(self, index: int) -> tuple[Path, Path | None]:
        """(TTS, ASR) folders the stage at ``index`` starts from."""
        if index == 0:
            return self.init, self.init_asr
        before = self._stage_dir(self.cfg.stages()[index - 1])
        return before / "tts", before / "asr"

    def _run_stage(self, stage: str, index: int) -> dict:
        tts_init, asr_init = self._previous(index)
        folder = self._stage_dir(stage)
        if stage == "finetune":
            row = {"stage": stage}
            self._train_tts(folder, self._real_rows(), tts_init, self.cfg.tts_finetune_steps)
            self._train_asr(folder, self._real_items(), asr_init, self.cfg.asr_finetune_steps)
        elif stage.startswith("round-"):
            row = {"stage": stage}
            round_number = int(stage.split("-")[1])
            pseudo, pseudo_row = self._pseudo_labels(folder, asr_init)
            row.update(pseudo_row)
            texts = self._text_slice(round_number - 1, self.cfg.texts_per_round)
            spoken = self._speak_many_voices(tts_init, texts, round_number)
            self._train_tts(folder, self._real_rows() + pseudo, tts_init,
                            self.cfg.tts_round_steps)
            self._train_asr(folder, self._real_items() + spoken, asr_init,
                            self.cfg.asr_round_steps)
            row["synthetic_for_asr"] = len(spoken)
        else:
            row = self._distill(folder, tts_init, asr_init)
        row.update(self._measure(folder / "tts", folder / "asr"))
        return row

    # ---- data ----------------------------------------------------------------------------------
    def _real_rows(self):
        return self.inputs.paired + self.inputs.low_quality

    def _asr_processor(self):
        from adavoice.train.asr import asr_processor

        if self._processor is None:  # one for the run: every stage tokenises the same way
            self._processor = asr_processor(self.inputs.language, "graphemes", self.packs_dir)
        return self._processor

    def _items(self, rows) -> list:
        """ASR training triples of real speech (mels cached in memory across stages)."""
        from adavoice.errors import EmptyTextError
        from adavoice.train.asr import token_text

        processor = self._asr_processor()
        items = []
        for row in rows:
            try:
                processed = processor.process(row.text)
            except EmptyTextError:
                continue
            items.append((self._mel(row.audio), list(processed.ids),
                          token_text(processed.tokens)))
        return items

    def _real_items(self) -> list:
        return self._items(self._real_rows())

    def _mel(self, audio: str) -> torch.Tensor:
        """The log-mel of a real recording, computed once per run."""
        from adavoice.audio import MelFrontend, load_audio
        from adavoice.config import MelConfig

        if audio not in self._real_cache:
            if self._frontend is None:
                self._frontend = MelFrontend(MelConfig())
            with torch.no_grad():
                self._real_cache[audio] = self._frontend(torch.from_numpy(
                    load_audio(audio, self._frontend.cfg.sample_rate_hz)))
        return self._real_cache[audio]

    def _text_order(self) -> list[str]:
        order = list(self.inputs.text)
        random.Random(self.cfg.seed).shuffle(order)
        return order

    def _text_slice(self, part: int, count: int) -> list[str]:
        """The ``part``-th slice of ``count`` sentences of the seeded unpaired text (wrapping
        around when the text runs out)."""
        order = self._text_order()
        return [order[(part * count + i) % len(order)] for i in range(count)]

    def _selection_texts(self) -> tuple[list[str], bool]:
        """The sentences :meth:`select_release` reads: the last ``selection_texts`` of the
        seeded order (the rounds and distillation take theirs from the front), and whether a
        stage's slice reached them (text too short to hold both apart)."""
        order = self._text_order()
        count = min(self.cfg.selection_texts, len(order))
        used = self.cfg.rounds * self.cfg.texts_per_round + self.cfg.distill_texts
        return order[len(order) - count:], used > len(order) - count

    # ---- training ------------------------------------------------------------------------------
    def _train_tts(self, folder: Path, rows, init: Path, steps: int) -> Path:
        from adavoice.data.manifest import Manifest
        from adavoice.models.base_model import read_base_config
        from adavoice.train.acoustic import train_base
        from adavoice.train.acoustic_losses import LossWeights

        data = folder / "tts-data"
        rows = [dataclasses.replace(u, extra={**u.extra, "split": "train"}) for u in rows]
        if self.rank == 0:
            Manifest(rows, data).save()
        self._sync()
        init_cfg = read_base_config(init)
        overrides = {k: v for k, v in init_cfg.acoustic.to_dict().items()
                     if k not in ("n_symbols", "n_speakers")}
        tcfg = TrainConfig.for_steps(steps, learning_rate=self.cfg.learning_rate,
                                     max_frames=self.cfg.tts_max_frames, seed=self.cfg.seed,
                                     checkpoint_every=max(50, min(250, steps // 4)))
        # the aligner comes trained from init: binarise from the first step
        train_base(data, folder / "tts", steps=steps, resume=True, train_cfg=tcfg,
                   overrides=overrides, tokenizer=self.tts_tokenizer, init=init,
                   loss_weights=LossWeights(binarization_start_step=0),
                   progress=self.progress, packs_dir=self.packs_dir,
                   feature_cache=self.work / "features", device=self.device)
        self._sync()  # rank 0 wrote the release
        return folder / "tts"

    def _train_asr(self, folder: Path, items: list, init: Path | None, steps: int) -> Path:
        from adavoice.train.asr import fit_recogniser

        valid = self._items(self.inputs.held_out)
        tcfg = TrainConfig(steps=steps, learning_rate=self.cfg.learning_rate,
                           warmup_steps=min(500, steps // 10 + 1), validate_every=10**9,
                           max_frames=self.cfg.asr_max_frames, seed=self.cfg.seed,
                           checkpoint_every=max(50, min(250, steps // 4)))
        fit_recogniser(items, valid, folder / "asr", self._asr_processor().symbols.to_dict(),
                       None if init is not None else self.cfg.asr_preset,
                       tcfg, init=init, device=self.device, resume=True,
                       progress=self.progress,
                       training={"bootstrap_stage": folder.name, "tokens": "graphemes"},
                       warp=self.cfg.asr_warp)
        self._sync()  # rank 0 wrote the release
        return folder / "asr"

    # ---- the two directions --------------------------------------------------------------------
    def _pseudo_labels(self, folder: Path, asr_dir: Path):
        """The unpaired speech with the ASR's transcripts as text (read back from
        ``pseudo.jsonl`` when a killed round wrote it before), and the report's numbers."""
        path = folder / "pseudo.jsonl"
        if path.is_file():
            texts = [json.loads(line)["text"] for line in path.read_text().splitlines()]
        else:
            texts, _ = self._transcribe(asr_dir, [self._mel(u.audio) for u in
                                                  self.inputs.unpaired],
                                        self.cfg.pseudo_label_decoder)
            if self.rank == 0:
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(path, "".join(
                    json.dumps({"id": u.id, "text": t}, ensure_ascii=False) + "\n"
                    for u, t in zip(self.inputs.unpaired, texts, strict=True)).encode())
        rows = [dataclasses.replace(u, text=t) for u, t in zip(self.inputs.unpaired, texts,
                                                                 strict=True)
                if sum(c.isalpha() for c in t) >= 2]
        return rows, {"pseudo_label_cer": self._pseudo_cer(self.inputs.unpaired, texts),
                      "pseudo_labels_kept": round(len(rows) / len(self.inputs.unpaired), 4)}

    def _pseudo_cer(self, rows, texts) -> float | None:
        from adavoice.errors import EmptyTextError
        from adavoice.train.asr import score, token_text

        processor = self._asr_processor()
        pairs = []
        for u, t in zip(rows, texts, strict=True):
            try:
                if u.extra.get("true_text"):
                    pairs.append((token_text(processor.process(u.extra["true_text"]).tokens), t))
            except EmptyTextError:
                continue
        if not pairs:
            return None
        return round(score([r for r, _ in pairs], [h for _, h in pairs])["cer"], 4)

    def _transcribe(self, asr_dir: Path, mels: list,
                    decoder: str = "greedy") -> tuple[list[str], list[float]]:
        """Transcripts (``greedy``, or ``beam`` with the n-gram of the unpaired text) and a
        confidence per utterance (see ``transcribe_mels``), shared across torchrun ranks; each
        recogniser is read from disk once (again only when its weights are rewritten)."""
        from adavoice.models.asr import CtcRecogniser
        from adavoice.train.asr import transcribe_mels

        key = (str(asr_dir), (Path(asr_dir) / "model.safetensors").stat().st_mtime_ns)
        if key not in self._recognisers:
            model, _, symbols = CtcRecogniser.from_dir(asr_dir)
            self._recognisers[key] = (model, symbols)
        model, symbols = self._recognisers[key]
        lm = self._language_model() if decoder == "beam" else None
        chunks = [mels[start:start + 16] for start in range(0, len(mels), 16)]
        done = shard_map(lambda chunk: list(zip(*transcribe_mels(
            model, chunk, symbols["symbols"], with_confidence=True, decoder=decoder, lm=lm),
            strict=True)), chunks)
        pairs = [pair for chunk in done for pair in chunk]
        return [t for t, _ in pairs], [c for _, c in pairs]

    def _speak_many_voices(self, tts_dir: Path, texts: list[str], seed: int) -> list:
        """ASR training triples: the TTS's mels of ``texts``, voices in rotation."""
        from adavoice.errors import EmptyTextError
        from adavoice.models.base_model import read_base_config
        from adavoice.train.asr import token_text

        voices = read_base_config(tts_dir).speakers
        rng = random.Random(self.cfg.seed * 1009 + seed)
        speakers = [voices[rng.randrange(len(voices))] for _ in texts]
        processor = self._asr_processor()
        items = []
        for text, (mel, _) in zip(texts, speak(tts_dir, texts, speakers), strict=True):
            try:
                processed = processor.process(text)
            except EmptyTextError:
                continue
            items.append((mel, list(processed.ids), token_text(processed.tokens)))
        return items

    # ---- distillation --------------------------------------------------------------------------
    def _distill(self, folder: Path, teacher: Path, teacher_asr: Path) -> dict:
        from adavoice.audio import save_audio
        from adavoice.config import MelConfig
        from adavoice.data.manifest import Utterance
        from adavoice.train.asr import score, token_text

        texts = self._text_slice(self.cfg.rounds, self.cfg.distill_texts)
        target = self.inputs.target
        spoken = speak(teacher, texts, [target] * len(texts))
        readback, _ = self._transcribe(teacher_asr, [m for m, _ in spoken])
        processor = self._asr_processor()
        audio_dir, kept_rows = folder / "audio", []
        mel_cfg = MelConfig()
        aligned = sum(1 for _, every in spoken if every)
        kept = []
        for index, (text, (_, every), heard) in enumerate(zip(texts, spoken, readback,
                                                               strict=True)):
            reference = token_text(processor.process(text).tokens)
            if every and score([reference], [heard])["cer"] <= self.cfg.distill_max_cer:
                kept.append(index)
        renderer: list = []  # loaded when a sample needs it (none when resumed past)

        def render(index: int) -> None:  # each rank renders and writes its share
            path = audio_dir / f"distill-{index:05d}.wav"
            if not path.is_file():
                if not renderer:
                    renderer.append(_renderer(self.cfg.distill_renderer, mel_cfg))
                with torch.no_grad():
                    save_audio(path, renderer[0](spoken[index][0]).numpy(),
                               mel_cfg.sample_rate_hz)

        shard_map(render, kept)
        for index in kept:
            text, mel = texts[index], spoken[index][0]
            path = audio_dir / f"distill-{index:05d}.wav"
            kept_rows.append(Utterance(id=f"distill-{index:05d}", audio=str(path.resolve()),
                                       text=text, speaker=target,
                                       language=self.inputs.language,
                                       duration_s=mel.shape[-1] * mel_cfg.hop_length
                                       / mel_cfg.sample_rate_hz))
        paired_target = [u for u in self.inputs.paired if u.speaker == target]
        self._sync()  # every rank's share of the kept audio is written
        self._train_tts(folder, kept_rows + paired_target, teacher, self.cfg.distill_tts_steps)
        # the ASR student: real pairs, the teacher's mels in many voices, confident labels
        unpaired_mels = [self._mel(u.audio) for u in self.inputs.unpaired]
        labels, confidence = self._transcribe(teacher_asr, unpaired_mels,
                                              self.cfg.pseudo_label_decoder)
        order = sorted(range(len(labels)), key=lambda i: -confidence[i])
        keep = set(order[:int(len(order) * self.cfg.asr_keep_share)])
        ids = processor.symbols
        pseudo_items = []
        for i in sorted(keep):
            known = [ids.id_of(c) for c in labels[i]]
            if sum(c.isalpha() for c in labels[i]) >= 2 and None not in known:
                pseudo_items.append((unpaired_mels[i], known, labels[i]))
        synthetic = self._speak_many_voices(teacher, texts, self.cfg.rounds + 1)
        self._train_asr(folder, self._real_items() + synthetic + pseudo_items, teacher_asr,
                        self.cfg.distill_asr_steps)
        kept_pseudo = [self.inputs.unpaired[i] for i in sorted(keep)]
        return {"stage": "distill",
                "tts_kept_share": round(len(kept_rows) / max(1, len(texts)), 4),
                "tts_aligned_share": round(aligned / max(1, len(texts)), 4),
                "asr_kept_share": round(len(pseudo_items) / max(1, len(labels)), 4),
                "pseudo_label_cer": self._pseudo_cer(self.inputs.unpaired, labels),
                "kept_pseudo_label_cer": self._pseudo_cer(
                    kept_pseudo, [labels[i] for i in sorted(keep)]),
                "synthetic_for_asr": len(synthetic)}

    # ---- measurement ---------------------------------------------------------------------------
    def _measure(self, tts_dir: Path, asr_dir: Path) -> dict:
        """:meth:`asr_scores`, and the judge's CER on the TTS's speech of the held-out
        sentences over its CER on the real recordings of the same sentences."""
        row = self.asr_scores(asr_dir)
        held = self.inputs.held_out
        if held:
            judge = self._judge_dir()
            row["judge"] = str(judge) if self.judge else "finetune-asr (frozen)"
            row.update(judge_scores(judge, tts_dir, held, self.inputs.target,
                                    [self._mel(u.audio) for u in held], self.packs_dir))
        return row

    def _judge_dir(self) -> Path:
        """The judge ASR: ``judge`` as given, else the fine-tune stage's (frozen) ASR."""
        from adavoice.models.asr import resolve_asr_dir

        return (resolve_asr_dir(self.judge) if self.judge is not None
                else self._stage_dir("finetune") / "asr")

    def asr_scores(self, asr_dir: Path) -> dict:
        """Greedy CER/WER of the recogniser in ``asr_dir`` on the held-out real speech of the
        target (``asr_cer_target``) and on each evaluation set, with CER per speaker."""
        from adavoice.train.asr import score, token_text

        row: dict = {}
        processor = self._asr_processor()
        held = self.inputs.held_out
        sets = ({"target": held} if held else {}) | self.inputs.evaluation
        for name, rows in sets.items():
            refs = [token_text(processor.process(u.text).tokens) for u in rows]
            hyps, _ = self._transcribe(asr_dir, [self._mel(u.audio) for u in rows])
            result = score(refs, hyps)
            row[f"asr_cer_{name}"] = round(result["cer"], 4)
            row[f"asr_wer_{name}"] = round(result["wer"], 4)
            if name != "target":
                by_speaker: dict[str, list[int]] = {}
                for i, u in enumerate(rows):
                    by_speaker.setdefault(u.speaker, []).append(i)
                row[f"asr_cer_{name}_by_speaker"] = {
                    s: round(score([refs[i] for i in ix], [hyps[i] for i in ix])["cer"], 4)
                    for s, ix in sorted(by_speaker.items())}
        return row

    def _language_model(self):
        """A character n-gram of the unpaired text, in the ASR's own tokens, built once: the
        pseudo-labels decode with it, and the released recogniser carries it (beam search;
        ``adavoice asr eval --decoder``)."""
        from adavoice.errors import EmptyTextError
        from adavoice.models.ctc_decode import CharNgram
        from adavoice.train.asr import token_text

        if self._lm is not None:
            return self._lm
        processor, lines = self._asr_processor(), []
        for text in self.inputs.text:
            try:
                lines.append(token_text(processor.process(text).tokens))
            except EmptyTextError:
                continue
        self._lm = CharNgram.train(lines, order=LM_ORDER)
        return self._lm

    # ---- release -------------------------------------------------------------------------------
    def _selection_references(self) -> tuple[list[str], list[str], int, bool]:
        """The held-back sentences (:meth:`_selection_texts`) that have something to read,
        their references in the ASR's tokens, the references' normalised characters, and
        whether a stage's slice reached them."""
        from adavoice.errors import EmptyTextError
        from adavoice.evaluate.text_metrics import normalize_text
        from adavoice.train.asr import token_text

        texts, overlap = self._selection_texts()
        processor, refs, kept = self._asr_processor(), [], []
        for text in texts:
            try:
                reference = token_text(processor.process(text).tokens)
            except EmptyTextError:
                continue
            if normalize_text(reference):
                refs.append(reference)
                kept.append(text)
        if not kept:
            raise DatasetError("no held-back sentence to read the released TTS with",
                               fix="give more unpaired text, or --release last "
                                   "--postfilter-steps 0")
        return kept, refs, sum(len(normalize_text(r)) for r in refs), overlap

    def select_release(self) -> dict:
        """Which stage's TTS to release. Every finished stage's TTS speaks the held-back
        unpaired sentences (:meth:`_selection_texts`) in the target voice, and the fine-tune
        stage's ASR, which no stage after it changes, reads them back greedily. The stage
        with the lowest CER replaces the last stage only when it beats it by more than
        ``SELECTION_SE`` paired standard errors over the sentences (else the last stage stays:
        a difference within noise is no reason to drop what the later stages did). Neither
        the held-out recordings nor the judge that the report scores with are used, so the
        report's rows stay an honest test of the choice. ``release_tts`` "last" skips it."""
        stages = self.cfg.stages()
        if self.cfg.release_tts == "last":
            return {"tts_stage": stages[-1], "asr_stage": stages[-1], "rule": "last"}
        kept, refs, chars, overlap = self._selection_references()
        reader = self._stage_dir("finetune") / "asr"
        errors: dict[str, list[float]] = {}
        for stage in stages:
            spoken = speak(self._stage_dir(stage) / "tts", kept,
                           [self.inputs.target] * len(kept))
            hyps, _ = self._transcribe(reader, [mel for mel, _ in spoken])
            errors[stage] = sentence_errors(refs, hyps)
        cers = {stage: round(sum(e) / chars, 4) for stage, e in errors.items()}
        best = min(stages, key=lambda stage: (sum(errors[stage]), -stages.index(stage)))
        gain, se = paired_gain(errors[stages[-1]], errors[best], chars)
        chosen = best if gain > SELECTION_SE * se else stages[-1]
        return {"tts_stage": chosen, "asr_stage": stages[-1], "rule": "select",
                "reader": "finetune-asr", "sentences": len(kept),
                "sentences_trained_on": overlap, "readback_cer": cers,
                "best_stage": best, "gain_over_last": round(gain, 4),
                "gain_se": round(se, 4)}

    def _release(self, choice: dict) -> None:
        """``out`` becomes a base model folder (fp16): the TTS of ``choice["tts_stage"]``,
        with the ASR of ``choice["asr_stage"]`` in ``asr/``."""
        from adavoice.models.asr import CtcRecogniser
        from adavoice.models.base_model import load_base_model, save_base_model

        model, cfg = load_base_model(self._stage_dir(choice["tts_stage"]) / "tts")
        target_first(model, cfg, self.inputs.target)
        report = json.loads((self.out / "report.json").read_text(encoding="utf-8"))
        cfg.training["bootstrap"] = {"stages": [r["stage"] for r in report["rows"]],
                                     "inputs": report["inputs"], "release": choice}
        save_base_model(self.out, model, cfg, half=True)
        source = self._stage_dir(choice["asr_stage"])
        asr, mel, symbols = CtcRecogniser.from_dir(source / "asr")
        training = json.loads((source / "asr" / "config.json").read_text())["training"]
        asr.save(self.out / "asr", mel, symbols, training, half=True)
        self._language_model().save(self.out / "asr" / LM_FILE)
        if self.packs_dir is not None and not (self.out / "language").is_dir():
            shutil.copytree(self.packs_dir, self.out / "language")


    # ---- the post-filter -----------------------------------------------------------------------
    def _postfilter(self) -> dict:
        """Train a GAN mel post-filter (adavoice.train.mel_postfilter) for the released TTS in
        ``out`` on its own mels of the target's paired sentences, and install it in
        ``out/postfilter`` (fp16, with its critic). It stays installed unless the fine-tune
        ASR reads the filtered speech of the held-back sentences (those of
        :meth:`select_release`) worse than the unfiltered by more than ``SELECTION_SE`` paired
        standard errors. The row holds that read-back and, with held-out recordings, the
        judge's numbers on the released TTS with and without the filter. A killed training
        continues at its last checkpoint."""
        from adavoice.data.manifest import Manifest
        from adavoice.models.base_model import BaseModel
        from adavoice.train.mel_postfilter import train_postfilter

        folder = self.work / "postfilter"
        target = self.inputs.target
        rows = [dataclasses.replace(u, extra={**u.extra, "split": "train"})
                for u in self.inputs.paired if u.speaker == target]
        if self.rank == 0:
            Manifest(rows, folder / "data").save()
        self._sync()
        # crops of the filter's usual length, shorter where most recordings are shorter
        frames = sorted(self._mel(u.audio).shape[-1] for u in rows)
        segment = max(8, min(POSTFILTER_RUN.segment, frames[len(frames) // 2]))
        train_postfilter(self.out, folder / "data", folder / "run",
                         steps=self.cfg.postfilter_steps, segment=segment, device=self.device,
                         resume=True, install=True, progress=self.progress)
        self._sync()  # rank 0 installed it
        shape = BaseModel.load(self.out, precision="float32").mel_filter("universal")
        texts, refs, chars, _ = self._selection_references()
        spoken = [mel for mel, _ in speak(self.out, texts, [target] * len(texts))]
        reader = self._stage_dir("finetune") / "asr"
        with torch.no_grad():
            filtered = [shape(mel) for mel in spoken]
        plain = sentence_errors(refs, self._transcribe(reader, spoken)[0])
        after = sentence_errors(refs, self._transcribe(reader, filtered)[0])
        loss, se = paired_gain(after, plain, chars)
        installed = loss <= SELECTION_SE * se
        if not installed and self.rank == 0:
            shutil.rmtree(self.out / "postfilter")
        self._sync()
        row = {"stage": "postfilter", "steps": self.cfg.postfilter_steps,
               "pairs": len(rows), "segment": segment, "installed": installed,
               "readback_cer": {"unfiltered": round(sum(plain) / chars, 4),
                                "filtered": round(sum(after) / chars, 4)},
               "readback_loss_se": round(se, 4)}
        held = self.inputs.held_out
        if held:
            row.update(judge_scores(self._judge_dir(), self.out, held, target,
                                    [self._mel(u.audio) for u in held], self.packs_dir,
                                    mel_filter=shape))
        return row


def sentence_errors(references: list[str], hypotheses: list[str]) -> list[float]:
    """Character edits per sentence (CER times the normalised reference's length), so that
    their sum over the normalised characters is the pooled CER."""
    from adavoice.evaluate.text_metrics import cer, normalize_text

    return [cer(r, h) * len(normalize_text(r))
            for r, h in zip(references, hypotheses, strict=True)]


def paired_gain(errors: list[float], other: list[float], chars: int) -> tuple[float, float]:
    """(CER of ``errors`` minus CER of ``other``, the standard error of that difference over
    the sentences), both as fractions of ``chars``: a paired comparison of two systems on the
    same sentences (:func:`sentence_errors`)."""
    diffs = [a - b for a, b in zip(errors, other, strict=True)]
    mean = sum(diffs) / len(diffs)
    variance = sum((d - mean) ** 2 for d in diffs) / max(1, len(diffs) - 1)
    return sum(diffs) / chars, (variance / len(diffs)) ** 0.5 * len(diffs) / chars


def shard_map(function, items: list) -> list:
    """``[function(item) for item in items]``; under torchrun (an initialised process group of
    N ranks) rank r computes items r, r + N, ... and the results are gathered, so every rank
    returns the whole list, in order. Results travel pickled: numpy arrays, text, numbers."""
    world, rank = 1, 0
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    mine = {index: function(items[index]) for index in range(rank, len(items), world)}
    if world > 1:
        parts: list = [None] * world
        torch.distributed.all_gather_object(parts, mine)
        mine = {index: result for part in parts for index, result in part.items()}
    return [mine[index] for index in range(len(items))]


def speak(tts_dir: Path, texts: list[str], speakers: list[str]) -> list[tuple[torch.Tensor, bool]]:
    """(mel (n_mels, T), every letter or phoneme got a frame) per text, in the given voices,
    shared across torchrun ranks (:func:`shard_map`): every rank returns the whole list, equal
    to what one process would speak."""
    from adavoice.models.base_model import BaseModel

    base = BaseModel.load(tts_dir, precision="float32")
    silent = set(base.processor.pack.kept_punctuation) | {"<pad>"}
    sounding = {i for i, s in enumerate(base.processor.symbols.symbols) if s not in silent}

    def one(index: int):
        condition = base.model.speaker_condition(base.speaker_id(speakers[index]))
        mels, every = [], True
        for tokens in base.token_pieces(texts[index]):
            result = base.model.infer(tokens, condition)
            mels.append(result.mel[0])
            durations = [d for t, d in zip(tokens[0].tolist(), result.durations[0].tolist(),
                                           strict=True) if t in sounding]
            every = every and all(d >= 1 for d in durations)
        return torch.cat(mels, dim=-1).numpy(), every

    return [(torch.from_numpy(mel), every)
            for mel, every in shard_map(one, list(range(len(texts))))]


def judge_scores(judge: Path, tts_dir: Path, rows, target: str, real_mels: list,
                 packs_dir: Path | None = None, mel_filter=None) -> dict:
    """The frozen judge's CER on the TTS's mels of ``rows``' sentences in the ``target``
    voice, its CER on the real recordings' mels of the same sentences, and the ratio
    (1.0: the TTS is as readable as the real voice). With ``mel_filter`` (a mel post-filter)
    the TTS's numbers are of the filtered mels, and ``judge_cer_tts_unfiltered`` /
    ``judge_cer_ratio_unfiltered`` are of the same mels unfiltered."""
    from adavoice.models.asr import CtcRecogniser
    from adavoice.text import SymbolTable, TextProcessor
    from adavoice.train.asr import score, token_text, transcribe_mels

    model, _, symbols = CtcRecogniser.from_dir(judge)
    processor = TextProcessor.from_symbols(SymbolTable.from_dict(symbols), packs_dir=packs_dir,
                                           emit_warnings=False)
    refs = [token_text(processor.process(u.text).tokens) for u in rows]
    synthetic = [mel for mel, _ in speak(tts_dir, [u.text for u in rows], [target] * len(rows))]
    table = symbols["symbols"]
    real_cer = score(refs, transcribe_mels(model, real_mels, table))["cer"]

    def ratio(cer: float) -> float:
        return round(cer / max(real_cer, 0.005), 3)

    result = {}
    if mel_filter is not None:
        unfiltered = score(refs, transcribe_mels(model, synthetic, table))["cer"]
        result = {"judge_cer_tts_unfiltered": round(unfiltered, 4),
                  "judge_cer_ratio_unfiltered": ratio(unfiltered)}
        with torch.no_grad():
            synthetic = [mel_filter(mel) for mel in synthetic]
    tts_cer = score(refs, transcribe_mels(model, synthetic, table))["cer"]
    return {"judge_cer_tts": round(tts_cer, 4), "judge_cer_real": round(real_cer, 4),
            "judge_cer_ratio": ratio(tts_cer), **result}


def _renderer(name: str, mel_cfg):
    """A mel (n_mels, T) -> wave renderer for the distillation audio."""
    if name == "universal":
        from adavoice.models.universal import universal_vocoder

        return universal_vocoder(mel_cfg)
    from adavoice.models.griffin_lim import GriffinLim

    return GriffinLim(mel_cfg)


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def bootstrap(language: str, out: str | Path, paired: str | Path, unpaired_speech: str | Path,
              unpaired_text: str | Path, **kwargs) -> Path:
    """Run (or continue) the bootstrap; see :class:`Bootstrap` and the module docstring."""
    if not language:
        raise DatasetError("a language code is needed")
    return Bootstrap(language, Path(out), Path(paired), Path(unpaired_speech),
                     Path(unpaired_text), **kwargs).run()
