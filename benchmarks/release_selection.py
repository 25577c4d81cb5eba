"""Issue 20: does the bootstrap's release choice (``BootstrapConfig.release_tts`` "select")
pick the stage whose TTS the frozen judge reads best? For finished runs,
`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/release_selection.py runs/bootstrap-it ...`:
each stage's read-back CER by the run's own fine-tune ASR on the held-back unpaired sentences
(what the choice sees), beside the judge's CER ratio on the held-out recordings' sentences
(what the report scores, from the run's report.json), and the judge's own read-back CER on
the same held-back sentences (``--judge``, one per run: 5x the sentences of the report's ratio)
-> benchmarks/results/release-selection.json.
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def judge_readback(b, judge: Path, texts: list[str]) -> dict:
    """The judge's greedy CER on each stage's speech of ``texts`` in the target voice, with
    the paired standard error of each stage's difference to the last stage (per-sentence
    error counts)."""
    from adavoice.bootstrap.run import paired_gain, sentence_errors, speak
    from adavoice.evaluate.text_metrics import normalize_text
    from adavoice.models.asr import CtcRecogniser
    from adavoice.text import SymbolTable, TextProcessor
    from adavoice.train.asr import token_text, transcribe_mels

    model, _, symbols = CtcRecogniser.from_dir(judge)
    processor = TextProcessor.from_symbols(SymbolTable.from_dict(symbols), emit_warnings=False)
    refs = [token_text(processor.process(t).tokens) for t in texts]
    chars = sum(len(normalize_text(r)) for r in refs)
    errors = {}
    for stage in b.cfg.stages():
        mels = [m for m, _ in speak(b._stage_dir(stage) / "tts", texts,
                                    [b.inputs.target] * len(texts))]
        errors[stage] = sentence_errors(refs, transcribe_mels(model, mels, symbols["symbols"]))
    last = b.cfg.stages()[-1]
    out = {}
    for stage, e in errors.items():
        difference, se = paired_gain(e, errors[last], chars)
        out[stage] = {"cer": round(sum(e) / chars, 4), "minus_last": round(difference, 4),
                      "minus_last_se": round(se, 4)}
    return out


def probe(run: Path, judge: Path | None) -> dict:
    from adavoice.bootstrap import Bootstrap, BootstrapConfig

    state = json.loads((run / "work" / "state.json").read_text(encoding="utf-8"))
    stored = state["inputs"]
    known = {f.name for f in dataclasses.fields(BootstrapConfig)}
    config = BootstrapConfig(**{k: v for k, v in stored["config"].items() if k in known},
                             release_tts="select")
    b = Bootstrap(stored["language"], run, Path(stored["paired"]),
                  Path(stored["unpaired_speech"]), Path(stored["unpaired_text"]),
                  init=stored["init"], low_quality=stored["low_quality"] and
                  Path(stored["low_quality"]), config=config, progress=False)
    start = time.perf_counter()
    choice = b.select_release()
    texts = [t for t in b._selection_texts()[0]]
    rows = json.loads((run / "report.json").read_text(encoding="utf-8"))["rows"]
    judged = {r["stage"]: r.get("judge_cer_ratio") for r in rows}
    best_judged = min(judged, key=lambda s: judged[s])
    return {"run": str(run.relative_to(ROOT)), "language": stored["language"],
            "choice": choice, "judge_cer_ratio": judged,
            "judge_best_stage": best_judged,
            "chosen_judge_ratio": judged[choice["tts_stage"]],
            "last_judge_ratio": judged[config.stages()[-1]],
            "judge_readback": judge_readback(b, judge, texts) if judge else None,
            "wall_s": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--judge", nargs="*", type=Path, default=[])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "release-selection.json")
    args = parser.parse_args()
    results = []
    judges = args.judge or [None] * len(args.runs)
    for run, judge in zip(args.runs, judges, strict=True):
        results.append(probe(run.resolve(), judge))
        print(json.dumps(results[-1]), flush=True)
    args.out.write_text(json.dumps({
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/release_selection.py "
                   + " ".join(str(r) for r in args.runs)
                   + (" --judge " + " ".join(str(j) for j in args.judge) if args.judge else ""),
                   "runs": results}, indent=2) + "\n")
