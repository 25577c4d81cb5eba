"""`make demo`: give the shipped base a new voice from 20 clips, with and without transcripts.

1. Adapts `models/demo` to `examples/demo-voice/` (20 clips of festival's slt HTS voice, which
   the base never heard) twice with the default `cln` adapter: with the transcripts (AdaSpeech)
   and without them (AdaSpeech 2). Writes `adapters/demo-transcribed/` and
   `adapters/demo-untranscribed/`.
2. Speaks the six held-out sentences of `examples/demo-voice-test/` with each voice and with the
   base's most similar seen speaker (the floor), and scores them against the real recordings:
   MCD, log-F0 RMSE, V/UV error, speaker similarity.
3. Writes `out/demo/README.md` (the report), `out/demo/mels.png`, `out/demo/report.json` and the
   wavs under `out/demo/wavs/`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

import adavoice
from adavoice.api import BaseModel, Voice
from adavoice.audio import load_audio
from adavoice.evaluate.report import load_transcripts
from adavoice.evaluate.voice_score import mean_mos, real_mels, score_voice, target_embedding

OUT = Path("out/demo")
CLIPS = Path("examples/demo-voice")
TEST = Path("examples/demo-voice-test")
# `python examples/demo.py griffin-lim` renders with another vocoder (MCD, F0 and MOS are taken
# on the rendered audio, so they move with the renderer; speaker similarity does not)
VOCODER = sys.argv[1] if len(sys.argv) > 1 else "auto"


def references() -> dict[str, tuple[Path, str]]:
    texts = load_transcripts(TEST / "metadata.csv")
    return {stem: (TEST / f"{stem}.flac", text) for stem, text in sorted(texts.items())}


def nearest_speaker(base: BaseModel, paths: list[Path]) -> str:
    similarity = base.seen_speaker_similarities(real_mels(paths, base))
    return base.speakers[0 if similarity is None else int(similarity.argmax())]


def plot_mels(base: BaseModel, refs, voices: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem, (audio, text) = next(iter(refs.items()))
    rows = [("real recording", real_mels([audio], base)[0])]
    rows += [(name, speak(text)) for name, speak in voices.items()]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 2.2 * len(rows)))
    for ax, (name, mel) in zip(axes, rows, strict=True):
        ax.imshow(mel.numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"{name}: {text}", fontsize=8)
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    started = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    OUT.mkdir(parents=True, exist_ok=True)
    base = BaseModel.shared("demo")
    voices, rows = {}, []
    for mode, untranscribed in (("transcribed", False), ("untranscribed", True)):
        voice = adavoice.adapt(base, CLIPS, untranscribed=untranscribed, name=f"demo-{mode}")
        folder = voice.save(Path("adapters") / f"demo-{mode}")
        voices[mode] = Voice.load(folder)  # from disk, as a user would; shares `base`
    refs = references()
    target = target_embedding(base, [p for p, _ in refs.values()])
    floor = nearest_speaker(base, sorted(CLIPS.glob("*.flac")))
    floor_voice = base.model.speaker_condition(base.speaker_id(floor))
    speakers = {f"base speaker {floor} (floor)": lambda t: base.mel(t, floor_voice)}
    speakers.update({f"adapted, {mode}": voice.mel for mode, voice in voices.items()})
    for (name, speak), slug in zip(speakers.items(), ["floor", *voices], strict=True):
        voice = voices.get(slug)
        summary = score_voice(base, speak, refs, OUT / "wavs" / slug, vocoder=VOCODER,
                              target=target, condition=voice.condition if voice else None)
        rows.append({"voice": name, **summary,
                     "adaptation_s": voice.config["provenance"]["wall_s"] if voice else None,
                     "stored_parameters": voice.stored_parameters if voice else None})
    real = mean_mos([load_audio(p, base.sample_rate) for p, _ in refs.values()],
                    base.sample_rate)
    rows.insert(0, {"voice": "real recordings", "mean_mcd_db": None,
                    "mean_log_f0_rmse_cents": None, "mean_vuv_error": None,
                    "speaker_similarity": None, **real, "adaptation_s": None,
                    "stored_parameters": None})
    plot_mels(base, refs, speakers, OUT / "mels.png")
    wall = time.perf_counter() - started
    (OUT / "report.json").write_text(json.dumps({"rows": rows, "wall_s": wall}, indent=2) + "\n")
    renderer = base.auto_vocoder + (
        ", after the base's learned mel post-filter"
        + (" (each adapted voice with its own tuned values)"
           if all(v.condition.postfilter is not None for v in voices.values()) else "")
        if base.mel_postfilter("auto") is not None else "")
    lines = report_lines(rows, wall, renderer)
    (OUT / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


def report_lines(rows: list[dict], wall_s: float, renderer: str) -> list[str]:
    def fmt(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = ["# adavoice demo: a new voice from 20 clips", "",
             f"Adapted `models/demo` to `{CLIPS}` (festival slt HTS, unseen by the base) and "
             f"scored the six held-out sentences of `{TEST}` against the real recordings.",
             f"Rendered with `--vocoder {VOCODER}` (auto: the base's best, {renderer}). "
             "DistillMOS and DNSMOS OVRL are predicted MOS from judges nobody here trained.", "",
             "| voice | MCD dB | log-F0 RMSE cents | V/UV error | speaker similarity | "
             "DistillMOS | DNSMOS OVRL | adaptation s | stored parameters |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['voice']} | {fmt(row['mean_mcd_db'], 2)} | "
                     f"{fmt(row['mean_log_f0_rmse_cents'], 0)} | {fmt(row['mean_vuv_error'], 3)} "
                     f"| {fmt(row['speaker_similarity'], 3)} | {fmt(row['distillmos'], 2)} | "
                     f"{fmt(row['dnsmos_ovrl'], 2)} | {fmt(row['adaptation_s'], 1)} | "
                     f"{row['stored_parameters'] or '-'} |")
    lines += ["", "Mels of the first test sentence: `mels.png`. Audio: `wavs/<voice>/hyp/`.",
              "Voices: `adapters/demo-transcribed/`, `adapters/demo-untranscribed/` "
              "(`adavoice synth --voice adapters/demo-transcribed \"Hello.\" --out hello.wav`).",
              "", f"wall time {wall_s:.1f} s"]
    return lines


if __name__ == "__main__":
    sys.exit(main())
