"""`make demo`: the main job on the shipped defaults, end to end on this CPU.

1. Builds a small synthetic corpus (the same sentences spoken by festival kal, flite kal16 and
   flite rms) and evaluates engine against engine: the same speaker through two engines scores a
   far lower MCD than two different speakers.
2. When the shipped base model is present (models/demo), synthesizes the corpus's validation
   sentences with each seen speaker and evaluates them against the engines' own audio.
Everything lands in out/demo/ (wavs, report.json, report.md, mel.png).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from adavoice.data.corpus.build import build_corpus
from adavoice.evaluate.report import evaluate_dirs

OUT = Path("out/demo")
VOICES = ["festival:kal_diphone", "flite:kal16", "flite:rms"]


def speaker_dir(corpus, speaker: str, target: Path) -> Path:
    """Copy one speaker's validation clips to target/<sentence key>.wav for pairing by name."""
    target.mkdir(parents=True, exist_ok=True)
    for utt in corpus.filter(speaker=speaker).split("valid"):
        shutil.copyfile(corpus.audio_path(utt), target / f"{sentence_key(utt.text)}.wav")
    return target


def sentence_key(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def main() -> int:
    started = time.perf_counter()
    corpus = build_corpus(OUT / "corpus", "en", VOICES, utterances=60, seed=0)
    dirs = {v: speaker_dir(corpus, v, OUT / "engines" / v.replace(":", "_")) for v in VOICES}
    lines = ["# adavoice demo", "", "| reference | hypothesis | MCD dB | log-F0 RMSE cents |",
             "|---|---|---|---|"]
    for ref, hyp in [(VOICES[0], VOICES[1]), (VOICES[0], VOICES[2]), (VOICES[1], VOICES[2])]:
        report = evaluate_dirs(dirs[ref], dirs[hyp], out_dir=OUT / "eval" / f"{ref}_vs_{hyp}")
        s = report.summary()
        lines.append(f"| {ref} | {hyp} | {s['mean_mcd_db']:.2f} | "
                     f"{s['mean_log_f0_rmse_cents']:.0f} |")
    if Path("models/demo/config.json").is_file():
        lines += synthesize_and_score(corpus, dirs)
    lines.append(f"\nwall time {time.perf_counter() - started:.1f} s")
    (OUT / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


def synthesize_and_score(corpus, dirs) -> list[str]:
    from adavoice.api import BaseModel

    model = BaseModel.load("demo")
    lines = ["", "## Base model vs engine audio (held-out sentences)", "",
             "| speaker | MCD dB | log-F0 RMSE cents | V/UV error |", "|---|---|---|---|"]
    for speaker in VOICES:
        if speaker not in model.speakers:
            continue
        hyp_dir = OUT / "synth" / speaker.replace(":", "_")
        for utt in corpus.filter(speaker=speaker).split("valid"):
            audio = model.synthesize(utt.text, speaker=speaker)
            audio.save(hyp_dir / f"{sentence_key(utt.text)}.wav")
        report = evaluate_dirs(dirs[speaker], hyp_dir, out_dir=OUT / "eval" / f"synth_{speaker}")
        s = report.summary()
        lines.append(f"| {speaker} | {s['mean_mcd_db']:.2f} | {s['mean_log_f0_rmse_cents']:.0f} | "
                     f"{s['mean_vuv_error']:.3f} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
