"""``report.json``, ``report.md`` and ``report.png`` of a bootstrap: one row per finished stage.

Row fields (absent when the inputs do not allow them):

- ``asr_cer_target`` / ``asr_wer_target``: the stage's ASR on the held-out real speech of the
  target voice (the paired data's valid split); ``asr_cer_<set>`` for each ``--eval`` set, with
  a per-speaker breakdown.
- ``judge_cer_tts`` / ``judge_cer_real`` / ``judge_cer_ratio``: a frozen judge ASR (``--judge``,
  else the fine-tuned ASR of stage 1) on the TTS's mels of the held-out sentences, on the real
  recordings of the same sentences, and the first over the second (intelligibility: 1.0 is as
  readable as the real voice).
- ``pseudo_label_cer``: the CER of the ASR's transcripts of the unpaired speech (when the
  unpaired manifest knew the true text); ``pseudo_labels_kept``, ``tts_kept_share``,
  ``tts_aligned_share``, ``asr_kept_share``: what each filter kept.
- ``wall_s``: the stage's wall time in the session that finished it.

``release`` (once every stage is done): which stage's TTS and ASR the released model took,
and, when the TTS was chosen, each stage's ``readback_cer`` that chose it
(``Bootstrap.select_release``).

``postfilter`` (after the release, unless ``postfilter_steps`` is 0): the mel post-filter
trained for the released TTS (``Bootstrap._postfilter``): whether it stayed ``installed``, the
fine-tune ASR's ``readback_cer`` of the held-back sentences unfiltered and filtered that
decided it, and the judge's numbers on the held-out sentences with the filter
(``judge_cer_ratio``) and without (``judge_cer_ratio_unfiltered``).
"""

from __future__ import annotations

import json
from pathlib import Path

from adavoice.atomic import atomic_write_bytes

COLUMNS = ("stage", "asr_cer_target", "judge_cer_ratio", "judge_cer_tts", "judge_cer_real",
           "pseudo_label_cer", "pseudo_labels_kept", "tts_kept_share", "asr_kept_share",
           "wall_s")
PLOTTED = ("asr_cer_target", "judge_cer_tts", "pseudo_label_cer")


def write_report(out: Path, rows: list[dict], inputs: dict, settings: dict,
                 release: dict | None = None, postfilter: dict | None = None) -> None:
    report = {"inputs": inputs, "settings": settings, "rows": rows}
    if release is not None:
        report["release"] = release
    if postfilter is not None:
        report["postfilter"] = postfilter
    atomic_write_bytes(Path(out) / "report.json",
                       (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode())
    atomic_write_bytes(Path(out) / "report.md",
                       markdown(rows, inputs, release, postfilter).encode())
    if rows:
        plot(rows, Path(out) / "report.png")


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown(rows: list[dict], inputs: dict, release: dict | None = None,
             postfilter: dict | None = None) -> str:
    extra = sorted({k for r in rows for k in r
                    if k.startswith("asr_cer_") and k not in COLUMNS
                    and not k.endswith("_by_speaker")})
    columns = list(COLUMNS[:2]) + extra + list(COLUMNS[2:])
    lines = ["# Bootstrap report", "",
             "Inputs: " + ", ".join(f"{k} {v}" for k, v in inputs.items()
                                    if not isinstance(v, dict)), "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    lines += ["", "CER and shares are fractions; judge_cer_ratio = judge_cer_tts / "
              "judge_cer_real (1.0: the TTS is as readable as the real voice).", ""]
    if release is not None:
        lines.append(f"Released: the TTS of {release['tts_stage']} and the ASR of "
                     f"{release['asr_stage']}.")
        if release.get("readback_cer"):
            lines.append(
                f"The TTS was chosen by the fine-tune ASR's CER on each stage's speech of "
                f"{release['sentences']} held-back unpaired sentences: "
                + ", ".join(f"{s} {c:.3f}" for s, c in release["readback_cer"].items())
                + (" (the text was too short to keep them out of training)."
                   if release.get("sentences_trained_on") else "."))
        lines.append("")
    if postfilter is not None:
        read = postfilter["readback_cer"]
        lines.append(
            f"Mel post-filter ({postfilter['steps']} steps on {postfilter['pairs']} paired "
            f"sentences of the target): "
            + ("installed" if postfilter["installed"] else "not installed (it read worse)")
            + f"; the fine-tune ASR's CER on the held-back sentences {read['unfiltered']:.3f} "
            f"unfiltered, {read['filtered']:.3f} filtered.")
        if "judge_cer_ratio" in postfilter:
            lines.append(f"Judge CER ratio of the released TTS: "
                         f"{postfilter['judge_cer_ratio_unfiltered']:.3f} unfiltered, "
                         f"{postfilter['judge_cer_ratio']:.3f} filtered.")
        lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """CERs per stage, one line per measure (Agg canvas; pyplot's backend is left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    stages = [r["stage"] for r in rows]
    for key in PLOTTED:
        values = [r.get(key) for r in rows]
        if any(v is not None for v in values):
            axes.plot(stages, [float("nan") if v is None else v for v in values], marker="o",
                      label=key)
    axes.set_ylabel("CER")
    axes.set_title("bootstrap, per stage")
    axes.legend(fontsize=8)
    figure.tight_layout()
    tmp = path.with_name(path.name + ".part")
    figure.savefig(tmp, format="png", dpi=90)
    tmp.replace(path)
