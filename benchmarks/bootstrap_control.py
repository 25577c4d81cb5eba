"""Issue 20: a control for the Czech bootstrap's ASR (BENCHMARKS.md "New language"),
`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap_control.py [--warp 0.1]`: fine-tuning
only, for as many steps as fine-tune + 2 rounds (500 + 300 + 300 = 1,100), on the same real
pairs; scored like the report's rows. ``--warp``: with VTLP (factors 1 +- warp) ->
bootstrap-cs-control-vtlp.json. ``--replay SHARE``: English utterances of the rich corpus
(``data/corpus-en``, 14 clean voices) mixed in as SHARE of the training items ->
bootstrap-cs-control-replaySHARE.json."""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def replay_items(run, corpus: Path, share: float, count: int) -> list:
    """ASR training triples from a rich-language corpus (its ``train`` split), to mix into a
    stage's ``count`` items so that they make ``share`` of the whole: a seeded draw spread
    evenly over the corpus's voices. The rich language's text goes through the new language's
    grapheme table; utterances with a character outside it are skipped."""
    import random

    from adavoice.data.manifest import Manifest
    from adavoice.errors import AdavoiceError
    from adavoice.train.asr import token_text

    if not 0 < share < 1:
        raise SystemExit(f"a replay share must be in (0, 1), got {share}")
    manifest = Manifest.load(corpus)
    rows = [u for u in manifest if u.extra.get("split", "train") == "train"] or list(manifest)
    rng = random.Random(run.cfg.seed * 7919 + count)
    by_voice: dict[str, list] = {}
    for u in rows:
        by_voice.setdefault(u.speaker, []).append(u)
    for voice_rows in by_voice.values():
        rng.shuffle(voice_rows)
    voices = sorted(by_voice)
    wanted = round(count * share / (1 - share))
    processor, items, turn = run._asr_processor(), [], 0
    while len(items) < wanted and any(by_voice.values()):
        voice_rows = by_voice[voices[turn % len(voices)]]
        turn += 1
        if not voice_rows:
            continue
        u = voice_rows.pop()
        try:
            processed = processor.process(u.text)
        except AdavoiceError:
            continue
        items.append((run._mel(str(manifest.audio_path(u).resolve())), list(processed.ids),
                      token_text(processed.tokens)))
    return items


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--warp", type=float, default=0.0)
    parser.add_argument("--replay", type=float, default=0.0)
    args = parser.parse_args()
    from adavoice.bootstrap import Bootstrap, BootstrapConfig
    d = ROOT / "data" / "bootstrap-cs"
    b = Bootstrap("cs", ROOT / "runs" / "control-cs", d / "paired", d / "unpaired",
                  d / "unpaired-text.txt", low_quality=d / "low-quality", evaluation=[d / "eval"],
                  config=dataclasses.replace(BootstrapConfig(), asr_warp=args.warp),
                  progress=True)
    suffix = (f"-vtlp{args.warp:g}" if args.warp else "") + (
        f"-replay{args.replay:g}" if args.replay else "")
    folder = ROOT / "runs" / "control-cs" / f"asr-1100{suffix}"
    items = b._real_items()
    if args.replay:
        items = items + replay_items(b, ROOT / "data" / "corpus-en", args.replay, len(items))
    b._train_asr(folder, items, b.init_asr, 1100)
    scores = b.asr_scores(folder / "asr")  # as the bootstrap's own rows
    row = {"stage": "finetune ASR only, 1,100 steps" + (f", VTLP {args.warp:g}" if args.warp
                                                        else "")
           + (f", English replay {args.replay:g}" if args.replay else ""),
           "asr_cer_target": scores["asr_cer_target"], "asr_cer_eval": scores["asr_cer_eval"],
           "by_speaker": scores["asr_cer_eval_by_speaker"]}
    trained = b.inputs.trained_speakers
    seen = [v for s, v in row["by_speaker"].items() if s in trained]
    unseen = [v for s, v in row["by_speaker"].items() if s not in trained]
    row["asr_cer_seen"] = round(sum(seen) / len(seen), 4)
    row["asr_cer_unseen"] = round(sum(unseen) / len(unseen), 4)
    name = ("bootstrap-cs-control" + ("-vtlp" if args.warp else "")
            + (f"-replay{args.replay:g}" if args.replay else "") + ".json")
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap_control.py"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(
        {"command": command + (f" --warp {args.warp:g}" if args.warp else "")
         + (f" --replay {args.replay:g}" if args.replay else ""), **row},
        indent=2) + "\n")
    print(json.dumps(row))
