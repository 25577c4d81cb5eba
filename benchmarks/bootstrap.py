"""Issue 20 part 3: the LRSpeech ablation of one language -> benchmarks/results/bootstrap-LANG.json
(+ a Markdown table for BENCHMARKS.md). Czech:

    python benchmarks/bootstrap_corpus.py --language cs --out data/bootstrap-cs
    adavoice train asr data/bootstrap-cs/full --out runs/judge-cs --init demo ...   # the judge
    adavoice lang bootstrap cs --paired data/bootstrap-cs/paired \\
        --low-quality-paired data/bootstrap-cs/low-quality \\
        --unpaired-speech data/bootstrap-cs/unpaired \\
        --unpaired-text data/bootstrap-cs/unpaired-text.txt \\
        --eval data/bootstrap-cs/eval --judge runs/judge-cs --out runs/bootstrap-cs
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap.py runs/bootstrap-cs \\
        --data data/bootstrap-cs [--topline runs/topline-cs [--reuse]]

Per stage of the bootstrap (fine-tune only = the ``finetune`` row, each dual-transformation
round, distillation), for the released model folder (the chosen stage's TTS, with its mel
post-filter when the bootstrap installed one) and for a topline when given: the stage's own
report numbers (ASR CER on held-out real speech of the target, seen and unseen voices; the
frozen judge's CER on the TTS's mels over its CER on the real recordings) and, here, the
TTS's 40 held-out sentences through the universal vocoder against the engine's own audio:
MCD, log-F0 RMSE, DistillMOS and DNSMOS. The engine audio's own predicted MOS is the
reference row. "Unseen" voices are the evaluation speakers that no training input (paired,
low-quality, unpaired) has.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def tts_quality(tts_dir: Path, held_out, target: str, work: Path,
                sharpen: float | None = None) -> dict:
    from adavoice.evaluate.voice_score import score_voice
    from adavoice.models.base_model import BaseModel

    base = BaseModel.load(tts_dir)
    if sharpen is not None:  # as if the base's config set mel_sharpening
        base.cfg.mel_sharpening = sharpen
    condition = base.model.speaker_condition(base.speaker_id(target))
    references = {u.id: (Path(u.audio), u.text) for u in held_out}
    summary = score_voice(base, lambda text: base.mel(text, condition), references, work,
                          vocoder="universal")
    means = {k: summary.get(f"mean_{k}") for k in ("mcd_db", "log_f0_rmse_cents", "vuv_error")}
    return {**means, "distillmos": summary.get("distillmos"),
            "dnsmos_ovrl": summary.get("dnsmos_ovrl")}


def engine_mos(held_out) -> dict:
    from adavoice.audio import load_audio
    from adavoice.evaluate.voice_score import mean_mos

    return mean_mos([load_audio(u.audio, 22050) for u in held_out], 22050)


def judge_ratio(judge: Path, tts_dir: Path, held_out, target: str, mel_filter=None) -> dict:
    """The bootstrap's own judge measurement, for a system without a bootstrap report (a
    topline; a base with a post-filter, whose mels the judge then reads filtered)."""
    from adavoice.bootstrap.run import judge_scores
    from adavoice.models.asr import Recogniser

    real = Recogniser.load(judge).mels([u.audio for u in held_out])
    return judge_scores(judge, tts_dir, held_out, target, real, mel_filter=mel_filter)


def seen_unseen(stage_row: dict, trained) -> dict:
    """Mean ASR CER over the evaluation speakers some training input has, and over the rest."""
    by_speaker = stage_row.get("asr_cer_eval_by_speaker", {})
    seen = [v for s, v in by_speaker.items() if s in trained]
    unseen = [v for s, v in by_speaker.items() if s not in trained]
    return {"asr_cer_seen": sum(seen) / len(seen) if seen else None,
            "asr_cer_unseen": sum(unseen) / len(unseen) if unseen else None}


def released_row(run: Path, report: dict, trained, held, target: str, work: Path,
                 sharpen: float | None = None) -> dict:
    """The model folder the bootstrap released (fp16): the chosen stage's TTS with the mel
    post-filter when one was installed (the judge's numbers are then of the filtered mels,
    from the report), and the ASR numbers of the stage its recogniser came from."""
    release, postfilter = report["release"], report.get("postfilter")
    rows = {r["stage"]: r for r in report["rows"]}
    filtered = bool(postfilter and postfilter.get("installed"))
    row = {"system": f"released: TTS of {release['tts_stage']}"
                     + (" + post-filter" if filtered else "")
                     + f", ASR of {release['asr_stage']}"}
    judged = postfilter if filtered and "judge_cer_ratio" in postfilter else \
        rows[release["tts_stage"]]
    row.update({k: judged.get(k) for k in ("judge_cer_tts", "judge_cer_real", "judge_cer_ratio")})
    asr = rows[release["asr_stage"]]
    row.update({k: v for k, v in asr.items() if k.startswith("asr_")})
    row.update(seen_unseen(asr, trained))
    if postfilter:
        row["postfilter"] = postfilter
    row.update(tts_quality(run, held, target, work, sharpen))
    print(f"released: {json.dumps({k: row.get(k) for k in ('mcd_db', 'distillmos')})}",
          flush=True)
    return row


def compare_row(model: Path, judge: Path, held, target: str, work: Path,
                sharpen: float | None = None) -> dict:
    """Another model folder's TTS (a shipped model), scored as the released row is: the judge
    reads its mels through the post-filter it carries, if any."""
    from adavoice.models.base_model import BaseModel

    mel_filter = BaseModel.load(model, precision="float32").mel_filter("universal")
    row = {"system": f"compare: {model}", "postfilter": mel_filter is not None}
    row.update(judge_ratio(judge, model, held, target, mel_filter=mel_filter))
    row.update(tts_quality(model, held, target, work, sharpen))
    return row


def table(result: dict) -> str:
    cols = ["system", "judge_cer_ratio", "mcd_db", "log_f0_rmse_cents", "distillmos",
            "asr_cer_target", "asr_cer_seen", "asr_cer_unseen", "wall_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in result["rows"]:
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the bootstrap's --out")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bootstrap-cs")
    parser.add_argument("--topline", type=Path, default=None,
                        help="a TTS trained on all the target voice's data (optional)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/bootstrap-LANG.json")
    parser.add_argument("--stages", nargs="*", default=None,
                        help="score only these stages (default: every stage of the report)")
    parser.add_argument("--sharpen", type=float, default=None,
                        help="render the TTS quality rows with this mel sharpening "
                             "(adavoice.postfilter), as a base whose config sets it")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the rows already in --out; score only --topline and --compare "
                             "(replacing their rows)")
    parser.add_argument("--compare", type=Path, nargs="*", default=(),
                        help="other model folders of the language (a shipped model such as "
                             "models/cs-demo) whose TTS to score as rows beside this run, by "
                             "the same judge, with the post-filter each carries")
    args = parser.parse_args(argv)
    from adavoice.bootstrap.data import read_inputs
    from adavoice.text.pack import LanguagePack

    report = json.loads((args.run / "report.json").read_text())
    language = report["inputs"]["language"]
    low_quality = args.data / "low-quality"
    inputs = read_inputs(language, LanguagePack.load(language), args.data / "paired",
                         args.data / "unpaired", args.data / "unpaired-text.txt",
                         low_quality if low_quality.is_dir() else None)
    held, target = inputs.held_out, inputs.target
    args.out = args.out or ROOT / "benchmarks" / "results" / f"bootstrap-{language}.json"
    trained = inputs.trained_speakers
    started = time.perf_counter()
    previous = json.loads(args.out.read_text()) if args.reuse and args.out.is_file() else None
    # a reused file keeps its topline and compare rows unless they are scored again here
    again = {f"compare: {m}" for m in args.compare} | (
        {"topline (all target data)"} if args.topline is not None else set())
    rows = ([r for r in previous["rows"] if r["system"] not in again]
            if previous else [{"system": "engine audio (reference)", **engine_mos(held)}])
    judge = Path(report["rows"][0].get("judge", ""))
    with tempfile.TemporaryDirectory() as tmp:
        for stage_row in ([] if previous else report["rows"]):
            stage = stage_row["stage"]
            if args.stages is not None and stage not in args.stages:
                continue
            row = {"system": stage, **{k: v for k, v in stage_row.items() if k != "stage"}}
            row.update(seen_unseen(stage_row, trained))
            row.update(tts_quality(args.run / "work" / stage / "tts", held, target,
                                   Path(tmp) / stage, args.sharpen))
            rows.append(row)
            print(f"{stage}: {json.dumps({k: row.get(k) for k in ('mcd_db', 'distillmos')})}",
                  flush=True)
        if not previous and "release" in report and (args.stages is None
                                                     or "released" in args.stages):
            rows.append(released_row(args.run, report, trained, held, target,
                                     Path(tmp) / "released", args.sharpen))
        if args.topline is not None:
            row = {"system": "topline (all target data)"}
            row.update(judge_ratio(judge, args.topline, held, target))
            row.update(tts_quality(args.topline, held, target, Path(tmp) / "topline",
                                   args.sharpen))
            rows.append(row)
        for index, model in enumerate(args.compare):
            rows.append(compare_row(model, judge, held, target, Path(tmp) / f"compare-{index}",
                                    args.sharpen))
    command = ("OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap.py "
               + " ".join(argv if argv is not None else sys.argv[1:]))
    result = {"command": command if not previous else previous["command"] + "; " + command,
              "inputs": report["inputs"], "settings": report["settings"], "rows": rows,
              "eval_wall_s": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
