"""Issue 20: a control for the Czech bootstrap's ASR (BENCHMARKS.md "New language"),
`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bootstrap_control.py`: fine-tuning only, for as
many steps as fine-tune + 2 rounds (500 + 300 + 300 = 1,100), on the same real pairs; scored
like the report's rows."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


if __name__ == "__main__":
    from adavoice.bootstrap import Bootstrap, BootstrapConfig
    from adavoice.train.asr import score, token_text
    d = ROOT / "data" / "bootstrap-cs"
    b = Bootstrap("cs", ROOT / "runs" / "control-cs", d / "paired", d / "unpaired",
                  d / "unpaired-text.txt", low_quality=d / "low-quality", evaluation=[d / "eval"],
                  config=BootstrapConfig(), progress=True)
    folder = ROOT / "runs" / "control-cs" / "asr-1100"
    b._train_asr(folder, b._real_items(), b.init_asr, 1100)
    processor = b._asr_processor()
    row = {"stage": "finetune ASR only, 1,100 steps"}
    for name, rows in {"target": b.inputs.held_out, **b.inputs.evaluation}.items():
        refs = [token_text(processor.process(u.text).tokens) for u in rows]
        hyps, _ = b._transcribe(folder / "asr", [b._mel(u.audio) for u in rows])
        row[f"asr_cer_{name}"] = round(score(refs, hyps)["cer"], 4)
        if name != "target":
            for s in sorted({u.speaker for u in rows}):
                ix = [i for i, u in enumerate(rows) if u.speaker == s]
                row.setdefault("by_speaker", {})[s] = round(
                    score([refs[i] for i in ix], [hyps[i] for i in ix])["cer"], 4)
    (ROOT / "benchmarks" / "results" / "bootstrap-cs-control.json").write_text(
        json.dumps({"command": "OMP_NUM_THREADS=1 .venv/bin/python "
                               "benchmarks/bootstrap_control.py", **row}, indent=2) + "\n")
    print(json.dumps(row))
