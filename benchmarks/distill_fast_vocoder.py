"""Issue 18 part 2: distil the universal HiFi-GAN (teacher) into the project's small iSTFT
vocoder (student), pairing the real mel with the teacher's rendering of it.

A real waveform is one of many that fit a mel and regression averages them; the teacher is a
deterministic function of the mel, so its rendering is one target the student can fit.

    # here: pack the corpus (Ogg Vorbis) and the teacher (fp16 safetensors) for the GPU machine
    .venv/bin/python benchmarks/distill_fast_vocoder.py pack data/fast-vocoder-corpus .gpu
    # on the GPU machine (device tool), ~8 min of training:
    python3 benchmarks/distill_fast_vocoder.py train .gpu $OUT/fast --seconds 420 --device cuda

Training: every utterance's log-mel comes from the whole real recording (as inference sees
it), the teacher renders each utterance once, in full, at the start; batches are random
segments of (mel frames, the teacher samples of those frames). Losses: multi-resolution STFT
and mel L1 against the teacher's segment, plus the phase losses against its STFT (the
project's vocoder losses, adavoice.train.vocoder). The student is saved with
``Vocoder.save`` (a shrunk HiFi-GAN with ``HiFiGAN.save``; fp32) every two minutes and at
the end.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def pack(corpus: Path, out: Path, audio_mb: float = 19.0) -> None:
    """The corpus's audio as Ogg Vorbis + a list (utterances in a seeded random order until
    ``audio_mb``: the device tool carries 64 MiB with the repo), the teacher as fp16
    safetensors."""
    import soundfile as sf

    from adavoice.models.universal import load_universal

    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    random.Random(0).shuffle(rows)
    names, used = [], 0
    for row in rows:
        if used > audio_mb * 1e6:
            break
        audio_path = corpus / row["audio"]
        samples, rate = sf.read(audio_path, dtype="float32")
        name = f"{len(names):05d}.ogg"
        sf.write(out / "audio" / name, samples, rate, format="OGG", subtype="VORBIS")
        used += (out / "audio" / name).stat().st_size
        names.append({"file": name, "speaker": row.get("speaker"), "split": row.get("split")})
    (out / "audio" / "list.json").write_text(json.dumps(names))
    load_universal().save(out / "teacher", {"note": "the universal HiFi-GAN V1, fp16 copy"},
                          half=True)
    # the mel filters, so the GPU machine needs no librosa
    from adavoice.audio import mel_filterbank
    from adavoice.config import MelConfig

    np.save(out / "mel_filterbank.npy", mel_filterbank(MelConfig()))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(f"packed {len(names)} utterances + teacher into {out} ({size:.1f} MB)")


def train(data: Path, out: Path, seconds: float, device: str, batch: int, segment: int,
          lr: float, seed: int, init: Path | None = None, adversarial: bool = False,
          critic_warmup: int = 200, reconstruction_weight: float = 45.0,
          feature_weight: float = 2.0, channels: tuple | None = None,
          utterances: int | None = None, log_every: int = 500,
          from_scratch: bool = False, teacher_cache: Path | None = None) -> None:
    """Regression on the teacher (``adversarial=False``), or, from ``init``, the project's
    adversarial phase against the teacher's audio: multi-period + multi-resolution
    discriminators (``VocoderCritic`` small), the student's loss ``reconstruction_weight`` x
    (STFT + mel + phase) + adversarial + ``feature_weight`` x feature matching, the
    discriminators learning alone for ``critic_warmup`` steps (``adavoice train vocoder
    --adversarial``'s recipe).

    ``channels``: instead of the iSTFT student, shrink the teacher (issue 18 part 2, second
    road): a HiFi-GAN with these channels per stage whose weights are the teacher's strongest
    channels, refitted layer by layer (:mod:`adavoice.models.prune`) on 16 training crops, then
    trained the same way without the phase terms (it has no phase head). On a CPU the teacher
    renders in bfloat16 autocast where that is fast. ``teacher_cache``: a file that keeps the
    teacher's renderings (fp16) for a restarted run, keyed by the data folder, the teacher's
    weights and the precision (another key renders again). ``utterances``: use only the first N.
    ``from_scratch``: the same shrunk shape from a random start (the control for pruning)."""
    import soundfile as sf
    import torch

    import adavoice.audio
    from adavoice.audio import MelFrontend
    from adavoice.config import MelConfig
    from adavoice.models.hifigan import HiFiGAN
    from adavoice.models.vocoder import Vocoder, VocoderConfig
    from adavoice.train.vocoder import multi_resolution_stft_loss, phase_losses

    bank = np.load(data / "mel_filterbank.npy")
    adavoice.audio.mel_filterbank = lambda cfg: bank  # the packed filters (no librosa there)
    started = time.time()
    torch.manual_seed(seed)
    random.seed(seed)
    dev = torch.device(device)
    mel_cfg = MelConfig()
    frontend = MelFrontend(mel_cfg).to(dev)
    hop = mel_cfg.hop_length
    from adavoice.models.universal import bfloat16_is_fast

    teacher = HiFiGAN.from_dir(data / "teacher").float().to(dev).eval()
    listing = json.loads((data / "audio" / "list.json").read_text())[:utterances]
    mels, waves, held = [], [], []
    cpu_bf16 = dev.type == "cpu" and bfloat16_is_fast()
    key = "|".join([str(data.resolve()), json.loads((data / "teacher" / "config.json")
                    .read_text())["weights_sha256"], "bfloat16" if cpu_bf16 else "float32"])
    cache: dict = {}
    if teacher_cache is not None and teacher_cache.is_file():
        stored = torch.load(teacher_cache, weights_only=True)  # a file this script wrote
        if stored.get("key") == key:
            cache = stored["waves"]
    rendered = 0
    with torch.no_grad():
        for index, row in enumerate(listing):
            samples, rate = sf.read(data / "audio" / row["file"], dtype="float32")
            if rate != mel_cfg.sample_rate_hz or len(samples) < (segment + 2) * hop:
                continue
            mel = frontend(torch.from_numpy(samples).to(dev))  # (80, T)
            frames = mel.shape[-1]
            if row["file"] in cache and len(cache[row["file"]]) == (frames - 1) * hop:
                wave = cache[row["file"]].float().to(dev)
            else:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16):
                    wave = teacher(mel[None])[0].float().clamp(-1, 1)  # (T - 1) * hop samples
                cache[row["file"]] = wave.half().cpu()
                rendered += 1
            if index % 50 == 0:
                held.append((mel, wave))
            else:
                mels.append(mel)
                waves.append(wave)
    out.mkdir(parents=True, exist_ok=True)
    if teacher_cache is not None and rendered:
        teacher_cache.parent.mkdir(parents=True, exist_ok=True)
        partial = teacher_cache.with_name(teacher_cache.name + ".part")
        torch.save({"key": key, "waves": cache}, partial)
        partial.replace(teacher_cache)  # a killed save leaves the old cache whole
    print(f"{len(mels)} train / {len(held)} held-out utterances, teacher rendered in "
          f"{time.time() - started:.1f} s", flush=True)

    if channels is not None:
        from adavoice.models.prune import prune_generator, refit

        if init is not None:
            student = HiFiGAN.from_dir(init).float()
        elif from_scratch:
            from dataclasses import replace

            student = HiFiGAN(replace(teacher.cfg, stage_channels=channels))
        else:
            crops = [m[:, :120] for m in mels if m.shape[-1] >= 120][:16]
            calibration = torch.stack(crops).cpu()
            cpu_teacher = teacher.cpu()
            student = refit(cpu_teacher, prune_generator(cpu_teacher, channels, calibration),
                            calibration)
            teacher.to(dev)
        student = student.to(dev).train()
    elif init is not None:
        student, _ = Vocoder.from_dir(init)
        student = student.float().to(dev).train()
    else:
        student = Vocoder(VocoderConfig.for_mel("small", mel_cfg)).to(dev).train()
    critic = critic_optimiser = None
    if adversarial:
        from adavoice.models.discriminators import VocoderCritic, critic_loss, generator_terms

        critic = VocoderCritic.for_preset("small").to(dev).train()
        critic_optimiser = torch.optim.AdamW(critic.parameters(), lr=lr, betas=(0.8, 0.99),
                                             weight_decay=1e-6)
    optimiser = torch.optim.AdamW(student.parameters(), lr=lr, betas=(0.8, 0.99),
                                  weight_decay=0.01)
    lengths = np.array([m.shape[-1] for m in mels])
    weights = lengths / lengths.sum()
    rng = np.random.default_rng(seed)
    use_amp = dev.type == "cuda"
    step, last_save, log = 0, time.time(), []
    budget_end = started + seconds

    def batch_of(n):
        picks = rng.choice(len(mels), size=n, p=weights)
        mel_b, wave_b = [], []
        for i in picks:
            start = int(rng.integers(0, mels[i].shape[-1] - segment))
            mel_b.append(mels[i][:, start:start + segment])
            wave_b.append(waves[i][start * hop:(start + segment - 1) * hop])
        return torch.stack(mel_b), torch.stack(wave_b)

    def losses(mel, target):
        if channels is not None:
            pred = student(mel)
            length = min(pred.shape[-1], target.shape[-1])
            pred, target = pred[:, :length], target[:, :length]
            stft = multi_resolution_stft_loss(pred, target)
            mel_loss = (frontend(pred) - frontend(target)).abs().mean()
            return stft + mel_loss, pred, target, {"stft": stft.detach(),
                                                   "mel": mel_loss.detach()}
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            magnitude, cos, sin = student.components(mel)
        magnitude, cos, sin = magnitude.float(), cos.float(), sin.float()
        pred = student.istft.from_cartesian(magnitude * cos, magnitude * sin)
        length = min(pred.shape[-1], target.shape[-1])
        pred, target = pred[:, :length], target[:, :length]
        stft = multi_resolution_stft_loss(pred, target)
        mel_loss = (frontend(pred) - frontend(target)).abs().mean()
        spec = frontend.spectrum(target)
        frames = min(spec.shape[-1], cos.shape[-1])
        terms = phase_losses(torch.atan2(sin, cos)[..., :frames], torch.angle(spec)[..., :frames])
        phase = sum(terms.values())
        return stft + mel_loss + phase, pred, target, {
            "stft": stft.detach(), "mel": mel_loss.detach(), "phase": phase.detach()}

    def held_out() -> float:
        student.eval()
        total = 0.0
        with torch.no_grad():
            for mel, wave in held:
                pred = student(mel[None])[0]
                n = min(len(pred), len(wave))
                total += float((frontend(pred[:n]) - frontend(wave[:n])).abs().mean())
        student.train()
        return total / max(1, len(held))

    def save(tag: str) -> None:
        folder = out / "student"
        student.eval()
        training = {
            "teacher": "universal HiFi-GAN V1 (adavoice.models.universal)",
            "recipe": "benchmarks/distill_fast_vocoder.py", "steps": step, "batch": batch,
            "segment_frames": segment, "learning_rate": lr, "device": str(dev),
            "init": None if init is None else str(init), "adversarial": adversarial,
            "wall_s": round(time.time() - started, 1), "tag": tag,
            "held_out_mel_l1_vs_teacher": held_mel}
        if channels is not None:
            training["channels"] = list(channels)
            training["start"] = ("random" if from_scratch else str(init) if init is not None
                                 else "pruned teacher, refitted")
            student.cpu().save(folder, {"note": "shrunk from the universal HiFi-GAN V1 (MIT, "
                                        "see adavoice.models.universal)", "training": training,
                                        "mel": mel_cfg.to_dict()})
        else:
            student.cpu().save(folder, mel_cfg, training=training)
        student.to(dev).train()
        (out / "log.json").write_text(json.dumps(log))
        print(f"saved at step {step} ({tag})", flush=True)

    held_mel = held_out()
    print(f"start: held-out mel L1 vs teacher {held_mel:.4f}", flush=True)
    while time.time() < budget_end:
        # cosine decay over the time budget (the number of steps is not known in advance)
        progress = (time.time() - started) / seconds
        for group in optimiser.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        mel, target = batch_of(batch)
        loss, pred, target, parts = losses(mel, target)
        if critic is not None:
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                d_loss = critic_loss(critic, target, pred)
            critic_optimiser.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(critic.parameters(), 10.0)
            critic_optimiser.step()
            parts["critic"] = d_loss.detach()
            loss = reconstruction_weight * loss
            if step >= critic_warmup:
                for p in critic.parameters():
                    p.requires_grad_(False)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                    terms = generator_terms(critic, target, pred)
                for p in critic.parameters():
                    p.requires_grad_(True)
                loss = loss + terms["adversarial_loss"] + feature_weight * terms["feature_loss"]
                parts["adversarial"] = terms["adversarial_loss"].detach()
                parts["feature"] = terms["feature_loss"].detach()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimiser.step()
        step += 1
        if step % log_every == 0:
            held_mel = held_out()
            log.append({"step": step, "s": round(time.time() - started, 1),
                        **{k: round(float(v), 4) for k, v in parts.items()},
                        "held_out_mel_l1": held_mel})
            print(json.dumps(log[-1]), flush=True)
        if time.time() - last_save > 120:
            save("periodic")
            last_save = time.time()
    held_mel = held_out()
    log.append({"step": step, "s": round(time.time() - started, 1), "held_out_mel_l1": held_mel})
    save("final")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("corpus", type=Path)
    p.add_argument("out", type=Path)
    t = sub.add_parser("train")
    t.add_argument("data", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--seconds", type=float, default=420)
    t.add_argument("--device", default="cuda")
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--segment", type=int, default=48)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init", type=Path, default=None, help="start from this student folder")
    t.add_argument("--adversarial", action="store_true")
    t.add_argument("--channels", default=None,
                   help="shrink the teacher instead: channels per stage, e.g. 128,64,32,16,8")
    t.add_argument("--utterances", type=int, default=None, help="use only the first N")
    t.add_argument("--log-every", type=int, default=500)
    t.add_argument("--from-scratch", action="store_true",
                   help="with --channels: a random start instead of the teacher's channels")
    t.add_argument("--teacher-cache", type=Path, default=None,
                   help="keep the teacher's renderings in this file for a restarted run")
    args = parser.parse_args()
    if args.command == "train" and args.from_scratch and (args.channels is None or args.init):
        parser.error("--from-scratch needs --channels and no --init")
    if args.command == "pack":
        pack(args.corpus, args.out)
    else:
        train(args.data, args.out, args.seconds, args.device, args.batch, args.segment,
              args.lr, args.seed, args.init, args.adversarial,
              channels=None if args.channels is None
              else tuple(int(c) for c in args.channels.split(",")),
              utterances=args.utterances, log_every=args.log_every,
              from_scratch=args.from_scratch, teacher_cache=args.teacher_cache)


if __name__ == "__main__":
    main()
