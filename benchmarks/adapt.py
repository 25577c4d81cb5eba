"""Benchmark of voice adaptation (issue 5) -> benchmarks/results/adapt.json (+ adapt.md).

    make corpus-adapt      # data/adapt-targets: flite:slt, espeak:en-us+f3, espeak:en-us+m3
    .venv/bin/python benchmarks/adapt.py --target flite:slt          # one target per process
    .venv/bin/python benchmarks/adapt.py --merge                     # table of all targets

For each target voice (none of them in the base corpus): the first 20 clips by id adapt, the
next 40 sentences test (``--test-data DIR``: 40 sentences of another corpus instead, for
choosing settings without looking at the test sentences). Every adapter kind is adapted with
its defaults (``--set FIELD=VALUE`` overrides AdapterConfig fields), with transcripts
(AdaSpeech) and without (AdaSpeech 2), and scored on the test sentences against the target's
real audio: MCD, log-F0 RMSE, V/UV error (Griffin-Lim audio), speaker similarity (ECAPA cosine on
the acoustic model's mels vs the real clips), PocketSphinx WER ratio (synthesized / real) on the
first ``--wer-sentences`` test sentences; plus adaptation wall time, stored parameters and bytes.
The floor is the unadapted base speaking as its most similar seen speaker.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import adavoice
from adavoice.adaptation.config import KINDS, AdapterConfig
from adavoice.api import BaseModel
from adavoice.data.manifest import Manifest
from adavoice.evaluate.voice_score import score_voice, target_embedding

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = ["flite:slt", "espeak:en-us+f3", "espeak:en-us+m3"]


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def target_rows(manifest: Manifest, speaker: str, adapt_clips: int, test_sentences: int):
    rows = sorted((u for u in manifest if u.speaker == speaker), key=lambda u: u.id)
    if len(rows) < adapt_clips + test_sentences:
        raise SystemExit(f"{speaker}: {len(rows)} rows, need {adapt_clips + test_sentences}")
    return rows[:adapt_clips], rows[adapt_clips:adapt_clips + test_sentences]


def run_target(args, speaker: str) -> dict:
    base = BaseModel.shared(args.model)
    manifest = Manifest.load(args.data)
    _, test = target_rows(manifest, speaker, args.clips, args.test_sentences)
    refs = {u.id: (manifest.audio_path(u), u.text) for u in test}
    if args.test_data is not None:  # a development set: none of the target's sentences above
        seen = {u.text for u in manifest if u.speaker == speaker}
        other = Manifest.load(args.test_data)
        rows = sorted((u for u in other if u.speaker == speaker and u.text not in seen),
                      key=lambda u: u.id)[:args.test_sentences]
        refs = {u.id: (other.audio_path(u), u.text) for u in rows}
    wer_refs = dict(list(refs.items())[:args.wer_sentences])
    target = target_embedding(base, [p for p, _ in refs.values()])
    recognizer = None
    if args.wer_sentences:
        from adavoice.evaluate.sphinx import PocketSphinxRecognizer

        recognizer = PocketSphinxRecognizer()
    work = Path(tempfile.mkdtemp(prefix=f"adapt-{slug(speaker)}-"))
    runs = []

    def score(name, mel_fn, extra, condition=None):
        summary = score_voice(base, mel_fn, refs, work / name, recognizer=recognizer,
                              target=target, recognize=set(wer_refs), condition=condition)
        if recognizer is not None:
            reference = summary["reference_pooled_wer"]
            summary["wer_ratio"] = summary["pooled_wer"] / reference if reference else None
        row = {"target": speaker, "run": name, **extra, **summary}
        runs.append(row)
        print(json.dumps({k: row[k] for k in ("run", "mean_mcd_db", "speaker_similarity")
                          if k in row}), flush=True)

    centroids = base.speaker_centroids()
    floor = base.speakers[int((centroids @ target).argmax())] if centroids is not None else None
    floor_voice = base.model.speaker_condition(base.speaker_id(floor))
    score("floor", lambda t: base.mel(t, floor_voice), {"kind": "none", "mode": "-",
                                                         "nearest_speaker": floor})
    plan = [(k, m) for k in args.kinds for m in args.modes]
    plan += [("cln", "transcribed-init-" + init) for init in args.extra_inits]
    if args.only_runs:  # re-measure some runs; --update merges them into the existing JSON
        plan = [(k, m) for k, m in plan if f"{k}-{m}" in args.only_runs]
    for kind, mode in plan:
        untranscribed = mode == "untranscribed"
        overrides = dict(args.set)
        if mode.startswith("transcribed-init-"):
            overrides["init"] = mode.split("-init-")[1]
        cfg = AdapterConfig.for_kind(kind, **{"steps": args.steps, **overrides})
        started = time.perf_counter()
        voice = adavoice.adapt(base, args.data, config=cfg, untranscribed=untranscribed,
                               speaker=speaker, max_utterances=args.clips, progress=False)
        wall = time.perf_counter() - started
        folder = voice.save(work / f"{kind}-{mode}-bundle")
        extra = {"kind": kind, "mode": mode, "adapt_wall_s": round(wall, 1),
                 "steps": voice.config["provenance"]["steps"],
                 "best_step": voice.config["provenance"]["best_step"],
                 "init": voice.config["provenance"].get("init"),
                 "stored_parameters": voice.stored_parameters,
                 "bundle_bytes": (folder / "adapter.safetensors").stat().st_size,
                 # LoRA-wrapped decoder blocks always synthesise in float32
                 "synthesis_precision": "float32" if kind == "lora" else base.precision}
        score(f"{kind}-{mode}", voice.mel, extra, voice.condition)  # its own post-filter values
    return {"target": speaker, "runs": runs, "test_sentences": len(refs),
            "wer_sentences": len(wer_refs) if recognizer else 0,
            "synthesis_precision": base.precision,
            "adaptation_precision": "float32"}


def update_rows(old: dict, new: dict) -> dict:
    """Replace ``old``'s rows by ``new``'s of the same run name (the floor included); note
    which rows came from which command."""
    fresh = {row["run"]: dict(row, command=new["command"]) for row in new["runs"]}
    runs = [fresh.pop(row["run"], row) for row in old["runs"]] + list(fresh.values())
    updated = dict(old, runs=runs)
    updated.setdefault("updates", []).append(new["command"])
    return updated


MARKDOWN_COLUMNS = [("run", "run", None), ("MCD dB", "mean_mcd_db", 2),
                    ("log-F0 RMSE cents", "mean_log_f0_rmse_cents", 0),
                    ("V/UV", "mean_vuv_error", 3), ("spk sim", "speaker_similarity", 3),
                    ("WER ratio", "wer_ratio", 2), ("adapt s", "adapt_wall_s", 1),
                    ("params", "stored_parameters", None), ("bytes", "bundle_bytes", None)]


def markdown(results: list[dict]) -> str:
    lines = []
    for result in results:
        lines += [f"### {result['target']}", "",
                  "| " + " | ".join(c for c, _, _ in MARKDOWN_COLUMNS) + " |",
                  "|" + "---|" * len(MARKDOWN_COLUMNS)]
        for row in result["runs"]:
            cells = []
            for _, key, digits in MARKDOWN_COLUMNS:
                value = row.get(key)
                cells.append("-" if value is None else
                             f"{value:.{digits}f}" if digits is not None else str(value))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def merge() -> None:
    parts = sorted(RESULTS.glob("adapt-*.json"))
    results = [json.loads(p.read_text()) for p in parts]
    (RESULTS / "adapt.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "adapt.md").write_text(markdown(results) + "\n")
    print(markdown(results))


def setting(text: str) -> tuple[str, object]:
    """``field=value`` -> (field, value); the value is read as JSON, else kept as a string."""
    field, sep, value = text.partition("=")
    if not sep or not field:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    try:
        return field, json.loads(value)
    except json.JSONDecodeError:
        return field, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--data", default="data/adapt-targets")
    parser.add_argument("--target", action="append", help="speaker SPEC (repeatable)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    parser.add_argument("--modes", nargs="+", default=["transcribed", "untranscribed"])
    parser.add_argument("--extra-inits", nargs="*", default=["nearest"])
    parser.add_argument("--test-data", type=Path, default=None,
                        help="score on this corpus's sentences of the target instead (a "
                             "development set: sentences in --data are left out)")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--test-sentences", type=int, default=40)
    parser.add_argument("--wer-sentences", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="override (smoke tests only)")
    parser.add_argument("--set", nargs="*", default=[], type=setting, metavar="FIELD=VALUE",
                        help="AdapterConfig overrides for every run, e.g. validation=synthesis")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--only-runs", nargs="*", default=None,
                        help="e.g. cln-untranscribed: measure only these (plus the floor)")
    parser.add_argument("--update", action="store_true",
                        help="replace those rows in the target's existing JSON")
    args = parser.parse_args()
    if args.merge:
        merge()
        return 0
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for speaker in args.target or TARGETS:
        started = time.perf_counter()
        result = run_target(args, speaker)
        result.update(threads=args.threads, wall_s=round(time.perf_counter() - started, 1),
                      machine=platform.processor() or platform.machine(),
                      command=" ".join(sys.argv))
        path = args.out / f"adapt-{slug(speaker)}.json"
        if args.update and path.is_file():
            result = update_rows(json.loads(path.read_text()), result)
        path.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
