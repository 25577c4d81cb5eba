"""Benchmark of the base acoustic model (issue 3) -> benchmarks/results/base.json (+ .md).

    .venv/bin/python benchmarks/base.py --model models/demo --data data/corpus-en \
        --run runs/base-small

Measures, on the corpus's held-out (valid) sentences:
- aligner: |boundary error| in ms between the aligner's hard durations (teacher-forced MAS) and
  espeak-ng's own phone timings, on the plain espeak speakers (same IPA phone set as the
  model's phoneme tokens; phones matched by sequence alignment);
- quality: MCD / log-F0 RMSE / V/UV error of synthesized speech against the engine's own audio
  of the same sentence, for flite:kal16, flite:rms, festival:kal_diphone;
- condition gap: validation mel L1 of the teacher-forced pass against the same pass with the
  phoneme-level condition predicted from text, as at inference (the rest teacher-forced);
- intelligibility: PocketSphinx (an independent recogniser) WER on synthesized speech divided by
  its WER on the engine audio of the same sentences;
- speed: acoustic-model real-time factor at 1 and 2 threads, peak memory, training steps/s.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from adavoice.api import BaseModel
from adavoice.audio import Audio, MelFrontend, audio_info, load_audio
from adavoice.data.features import FeatureCache
from adavoice.data.manifest import Manifest
from adavoice.evaluate.report import evaluate_dirs
from adavoice.evaluate.sphinx import PocketSphinxRecognizer
from adavoice.evaluate.text_metrics import wer
from adavoice.evaluate.timing import measure
from adavoice.train.acoustic import validation_losses
from adavoice.train.acoustic_data import AcousticDataset, collate_acoustic
from adavoice.train.acoustic_losses import LossWeights

SECTIONS = ("aligner", "condition_gap", "quality", "speed", "training")
QUALITY_SPEAKERS = ["flite:kal16", "flite:rms", "festival:kal_diphone"]
NOT_PHONES = {" ", "ˈ", "ˌ", ",", ".", "?", "!", "'", "-", "_"}


READINGS = ("separator_end", "separator_midpoint")


def boundary_errors_by_reading(processor, data: Path, cache: FeatureCache,
                               speakers: list[str], durations_fn, split: str = "valid",
                               limit: int | None = None) -> dict[str, np.ndarray]:
    """|start time| errors (ms) of every matched phone on the valid utterances of the plain
    espeak speakers, under both readings of a phone that follows a word separator (the space
    token, which has no sound of its own and no counterpart in espeak's timings):
    ``separator_end`` starts it where the separator's frames end, ``separator_midpoint`` at
    their middle. ``durations_fn(batch) -> (N,)`` gives the frames per token of one item; it
    runs once per utterance. ``split``/``limit`` choose other utterances (the first ``limit`` of
    a split), for settings chosen away from the validation sentences."""
    manifest = Manifest.load(data)
    plain = [s for s in speakers if s.startswith("espeak:") and "@" not in s]
    rows = Manifest([u for u in manifest.split(split) if u.speaker in plain and u.alignment]
                    [:limit], manifest.root)
    dataset = AcousticDataset(rows, processor, cache, speakers)
    seconds_per_frame = cache.mel_config.hop_length / cache.mel_config.sample_rate_hz
    errors_ms = {reading: [] for reading in READINGS}
    for index in range(len(dataset)):
        durations = durations_fn(collate_acoustic([dataset[index]])).numpy()
        tokens = processor.symbols.decode(dataset[index].ids.tolist())
        theirs = [(p, s) for p, s, _ in dataset.rows[index].alignment if p not in NOT_PHONES]
        ends = np.concatenate([[0], np.cumsum(durations)[:-1]]).astype(float)
        midpoints = ends.copy()
        for k in range(1, len(tokens)):
            if tokens[k - 1] == " ":
                midpoints[k] -= durations[k - 1] / 2
        for reading, starts in zip(READINGS, (ends, midpoints), strict=True):
            # frame f is centred on f * hop: a token starting at frame f starts at (f - 0.5)
            # hops; a stressed phoneme token ("ˈoʊ") is matched as its phoneme
            ours = [(tok.lstrip("ˈˌ"), max(0.0, (f - 0.5) * seconds_per_frame))
                    for tok, f in zip(tokens, starts, strict=True) if tok not in NOT_PHONES]
            matcher = difflib.SequenceMatcher(a=[p for p, _ in ours], b=[p for p, _ in theirs],
                                              autojunk=False)
            for block in matcher.get_matching_blocks():
                for k in range(block.size):
                    errors_ms[reading].append(
                        abs(ours[block.a + k][1] - theirs[block.b + k][1]) * 1000)
    return {reading: np.asarray(errors) for reading, errors in errors_ms.items()}


def boundary_errors_ms(processor, data: Path, cache: FeatureCache, speakers: list[str],
                       durations_fn, split: str = "valid", limit: int | None = None
                       ) -> np.ndarray:
    """The ``separator_end`` errors of :func:`boundary_errors_by_reading` (the reading used
    since the first base)."""
    return boundary_errors_by_reading(processor, data, cache, speakers, durations_fn, split,
                                      limit)["separator_end"]


def aligner_boundaries(model: BaseModel, data: Path, cache: FeatureCache) -> dict:
    def durations(batch):  # the aligner's hard (MAS) path, as training uses it
        with torch.no_grad():
            _, hard = model.model.align(batch.tokens, batch.text_mask, batch.mel,
                                        batch.frame_mask, batch.log_prior)
        return hard.sum(1)[0].long()

    def summary(errors):
        return {"boundaries": int(errors.size), "mean_abs_error_ms": float(errors.mean()),
                "median_abs_error_ms": float(np.median(errors)),
                "share_within_20ms": float((errors <= 20).mean())}

    errors = boundary_errors_by_reading(model.processor, data, cache, model.speakers, durations)
    return {**summary(errors["separator_end"]),
            "separator_midpoint": summary(errors["separator_midpoint"])}


def condition_gap(model: BaseModel, data: Path, cache: FeatureCache, items: int = 64) -> dict:
    """Validation mel L1 teacher-forced and with the predicted phoneme-level condition (the
    training run's own validation, on the first ``items`` valid rows)."""
    manifest = Manifest.load(data)
    rows = Manifest(list(manifest.split("valid"))[:items], manifest.root)
    dataset = AcousticDataset(rows, model.processor, cache, model.speakers)
    losses = validation_losses(model.model, dataset, "cpu", 0, LossWeights(), max_items=items)
    return {"utterances": len(dataset), "mel_l1_teacher_forced": losses["mel_loss"],
            "mel_l1_predicted_condition": losses["mel_loss_predicted"]}


def quality_and_intelligibility(model: BaseModel, manifest: Manifest, work: Path) -> dict:
    recognise = PocketSphinxRecognizer()
    frontend = MelFrontend(model.cfg.mel)
    griffin_lim = model.vocoder("griffin-lim")
    results = {}
    for speaker in QUALITY_SPEAKERS:
        rows = manifest.filter(speaker=speaker).split("valid")
        if speaker not in model.speakers or not len(rows):
            continue
        ref_dir, hyp_dir = work / "ref" / speaker, work / "hyp" / speaker
        copy_dir = work / "copy" / speaker
        ref_dir.mkdir(parents=True)
        copy_dir.mkdir(parents=True)
        transcripts, copy_words = {}, {}
        for utt in rows:
            (ref_dir / f"{utt.id}.wav").symlink_to(manifest.audio_path(utt).resolve())
            model.synthesize(utt.text, speaker=speaker, vocoder="griffin-lim").save(
                hyp_dir / f"{utt.id}.wav")
            # the engine's own audio through mel -> Griffin-Lim: what the vocoder alone costs
            wave = torch.from_numpy(load_audio(manifest.audio_path(utt), model.sample_rate))
            with torch.no_grad():
                copy = griffin_lim(frontend(wave)).numpy()
            Audio(copy, model.sample_rate).save(copy_dir / f"{utt.id}.wav")
            # recognised at the rate evaluate_dirs would use for the pair: the lower of the two
            rate = min(audio_info(manifest.audio_path(utt))[0], model.sample_rate)
            copy_words[utt.id] = recognise(load_audio(copy_dir / f"{utt.id}.wav", rate), rate)
            transcripts[utt.id] = utt.text
        report = evaluate_dirs(ref_dir, hyp_dir, transcripts=transcripts, recognizer=recognise,
                               out_dir=work / "report" / speaker)
        summary = report.summary()
        # copies: MCD without a recogniser (the engine audio was already recognised above)
        copy_summary = evaluate_dirs(ref_dir, copy_dir).summary()
        copy_wer = wer([transcripts[stem] for stem in copy_words], list(copy_words.values()))
        synth_wer, engine_wer = summary["pooled_wer"], summary["reference_pooled_wer"]
        results[speaker] = {
            "sentences": len(rows), "mcd_db": summary["mean_mcd_db"],
            "log_f0_rmse_cents": summary["mean_log_f0_rmse_cents"],
            "vuv_error": summary["mean_vuv_error"], "wer_synth": synth_wer,
            "wer_engine": engine_wer, "wer_ratio": synth_wer / max(engine_wer, 1e-9),
            "wer_griffin_lim_copy": copy_wer,
            "mcd_griffin_lim_copy_db": copy_summary["mean_mcd_db"],
        }
    return results


def speed(model: BaseModel, manifest: Manifest) -> dict:
    """RTF at 1 and 2 threads in the model's precision and in float32 (best of 3 runs each),
    and how far the two precisions' mels lie apart."""
    texts = [u.text for u in manifest.filter(speaker=QUALITY_SPEAKERS[0]).split("valid")]
    voice = model.model.speaker_condition(0)
    hop_s = model.cfg.mel.hop_length / model.cfg.mel.sample_rate_hz
    tokens = [model.tokens(t) for t in texts]

    def run_all():
        frames = 0
        for tok in tokens:
            frames += model.model.infer(tok, voice).mel.shape[-1]
        return frames * hop_s

    def timings() -> dict:
        out = {}
        for threads in (1, 2):
            run_all()  # warm-up
            reports = [measure(run_all, threads=threads, audio_seconds_fn=lambda seconds: seconds,
                               trace_python=False) for _ in range(3)]
            report = min(reports, key=lambda r: r.rtf)
            out[f"threads_{threads}"] = {"rtf": report.rtf, "audio_s": report.audio_s,
                                         "wall_s": report.wall_s,
                                         "peak_rss_mb": max(r.peak_rss_mb for r in reports)}
        return out

    shipped = model.precision
    out = {"precision": shipped, **timings()}
    if shipped != "float32":
        mels = [model.model.infer(tok, voice).mel for tok in tokens]
        model.set_precision("float32")
        out["float32"] = timings()
        reference = [model.model.infer(tok, voice).mel for tok in tokens]
        model.set_precision(shipped)
        same_length = all(a.shape == b.shape for a, b in zip(mels, reference, strict=True))
        out["mel_difference_vs_float32"] = {
            "same_frames": same_length,
            "mean_abs_log_mel": float(np.mean([(a - b).abs().mean().item() for a, b in
                                               zip(mels, reference, strict=True)]))
            if same_length else None}
    return out


def training_speed(run: Path | None) -> dict | None:
    if run is None or not (run / "curves.csv").is_file():
        return None
    with (run / "curves.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh)]
    if len(rows) < 3:
        return None
    first, last = rows[1], rows[-1]  # skip step 1 (start-up)
    steps = float(last["step"]) - float(first["step"])
    return {"steps_per_s": steps / (float(last["wall_s"]) - float(first["wall_s"])),
            "device": "cpu (2 cores)"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/demo")
    parser.add_argument("--data", default="data/corpus-en", type=Path)
    parser.add_argument("--run", default=None, type=Path)
    parser.add_argument("--out", default="benchmarks/results/base.json", type=Path)
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS,
                        help="measure only these; the others are kept from an existing --out")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = BaseModel.load(args.model)
    manifest = Manifest.load(args.data)
    cache = FeatureCache(args.data / ".feature-cache", model.cfg.mel)
    result = {"model": str(args.model), "command": "python benchmarks/base.py " + " ".join(
        sys.argv[1:] if argv is None else argv), "machine": platform.processor() or "cpu",
        "torch": torch.__version__, "precision": model.precision}
    # what measured each section (command, model, precision, machine): a partial run keeps
    # the other sections, each with its own record
    this_run = {k: result[k] for k in ("command", "model", "precision", "machine", "torch")}
    measured_by = dict.fromkeys(args.sections, this_run)
    if set(args.sections) != set(SECTIONS) and args.out.is_file():
        kept = json.loads(args.out.read_text())
        earlier = kept.get("measured_by") or dict.fromkeys(
            SECTIONS, {k: kept.get(k) for k in this_run})
        measured_by = {**earlier, **measured_by}
        result = {**{k: v for k, v in kept.items() if k in SECTIONS}, **result}
    result["measured_by"] = measured_by
    if "aligner" in args.sections:
        result["aligner"] = aligner_boundaries(model, args.data, cache)
    if "condition_gap" in args.sections:
        result["condition_gap"] = condition_gap(model, args.data, cache)
    if "quality" in args.sections:
        with tempfile.TemporaryDirectory() as tmp:
            result["quality"] = quality_and_intelligibility(model, manifest, Path(tmp))
    if "speed" in args.sections:
        result["speed"] = speed(model, manifest)
    if "training" in args.sections:
        result["training"] = training_speed(args.run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
