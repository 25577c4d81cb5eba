"""Every vocoder candidate of issue 18 as one point of quality against speed at one thread ->
benchmarks/results/vocoder-frontier.{json,png}.

    .venv/bin/python benchmarks/vocoder_frontier.py

Reads the `benchmarks/vocoder_quality.py --copy 5 --sentences 12` runs, which judge the same
clips and the same adapted voices (their Griffin-Lim cells are checked equal, so the runs are
comparable): quality is the mean DistillMOS over the four copy-synthesis voices and over the
seven end-to-end rows; speed is the renderer's real-time factor at one thread on one 8.4 s
utterance, as each run measured it. Nothing here is measured anew.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# (label, results file, renderer key in it)
CANDIDATES = [
    ("Griffin-Lim (32 it.)", "vocoder-quality-fast.json", "griffin-lim"),
    ("universal HiFi-GAN V1, bf16", "vocoder-quality-fast.json", "universal-bf16"),
    ("iSTFT student, regression (GPU)", "vocoder-quality-fast.json", "fast"),
    ("iSTFT student, + adversarial (GPU)", "vocoder-quality-fast-gan.json", "fast"),
    ("HiFi-GAN 128ch, teacher's channels (CPU)", "vocoder-quality-shrunk-pruned.json", "fast"),
    ("HiFi-GAN 128ch, random start (CPU)", "vocoder-quality-shrunk-scratch.json", "fast"),
]


def mean_distillmos(section: dict, renderer: str) -> float:
    return round(statistics.fmean(row[renderer]["distillmos"] for row in section.values()), 3)


def main() -> int:
    points, reference = [], None
    for label, file, key in CANDIDATES:
        path = RESULTS / file
        if not path.is_file():
            print(f"skipped {label}: no {file}")
            continue
        run = json.loads(path.read_text())
        gl = {name: row["griffin-lim"]["distillmos"] for name, row in run["copy_synthesis"].items()}
        if reference is None:
            reference = gl
        elif gl != reference:
            raise SystemExit(f"{file} judged other clips (its Griffin-Lim cells differ)")
        speed = run["speed_one_thread"]
        points.append({"label": label, "file": file, "renderer": key,
                       "rtf_one_thread": speed[f"{key}_rtf"],
                       "pipeline_rtf_one_thread": speed[f"pipeline_{key}_rtf"],
                       "copy_distillmos": mean_distillmos(run["copy_synthesis"], key),
                       "end_to_end_distillmos": mean_distillmos(run["end_to_end"], key),
                       "cpu": run.get("cpu")})
    (RESULTS / "vocoder-frontier.json").write_text(json.dumps(
        {"command": ".venv/bin/python benchmarks/vocoder_frontier.py", "points": points},
        indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, field, title in ((axes[0], "copy_distillmos", "copy-synthesis, 4 unseen voices"),
                               (axes[1], "end_to_end_distillmos", "end-to-end TTS, 7 rows")):
        for point in points:
            axis.scatter(point["rtf_one_thread"], point[field], s=40)
            axis.annotate(point["label"], (point["rtf_one_thread"], point[field]),
                          textcoords="offset points", xytext=(5, 4), fontsize=8)
        axis.set_xscale("log")
        axis.set_xlabel("vocoder real-time factor, one thread (log)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("mean DistillMOS")
    figure.tight_layout()
    figure.savefig(RESULTS / "vocoder-frontier.png", dpi=110)
    print(json.dumps(points, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
