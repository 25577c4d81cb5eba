"""A Piper-"medium"-shaped VITS with random weights, exported to ONNX the way Piper does, so that
a benchmark can time it next to our runtime. Benchmark-only: Piper (piper-tts==1.8.0) is GPL, so
it is imported here and never by the `adavoice` package.

The model is Piper's own `piper.train.vits.models.SynthesizerTrn`, built with the defaults of
Piper's training module `piper.train.vits.lightning.VitsModel` (which is what "medium" voices use):

- text: n_vocab 256 (Piper's default `num_symbols`), single speaker (gin_channels 0)
- TextEncoder: hidden 192, inter 192, filter 768, n_heads 2, n_layers 6, kernel 3, p_dropout 0.1
- StochasticDurationPredictor (use_sdp True), flow (4 coupling layers), PosteriorEncoder as Piper
- decoder: resblock "2", resblock kernels (3, 5, 7), dilations ((1, 2), (2, 6), (3, 12)),
  upsample rates (8, 8, 4), upsample_initial_channel 256, upsample kernels (16, 16, 8)
- audio: 22050 Hz, filter_length/n_fft 1024 (spec_channels 513), hop 256, segment_size 8192/256
- about 23.7 M parameters in all, of which the exported inference graph uses enc_p + dp + flow
  + dec (the posterior encoder enc_q, ~7.2 M, is training-only and not in the ONNX graph).

Export as `piper/train/export_onnx.py`: `dec.remove_weight_norm()`, forward replaced by an infer
wrapper taking `input` (1, N) int64, `input_lengths` (1,) int64, `scales` (3,) float32 =
(noise_scale, length_scale, noise_w); `torch.onnx.export(..., dynamo=False)`, opset 15, dynamic
axes for batch, phonemes and output time. Inference defaults 0.667 / 1.0 / 0.8 as Piper's.

Duration calibration (our addition, not Piper's): with random weights the duration predictor
gives ~1-2 frames per token, far shorter speech than a trained voice, which skews "compute per
second of audio" towards the text side. `frames_per_token` (default 3.0, roughly a trained
English Piper voice: ~30 ids/s with Piper's pad-interleaved ids at 86.1 frames/s) shifts the
bias `dp.flows[0].m[0]` (the last step of the reversed duration flow) so that the mean frame
count per token at Piper's default scales is about that. `frames_per_token=None` keeps the raw
random init. Nothing else is changed.

Run: `OMP_NUM_THREADS=1 python benchmarks/piper_medium.py [--threads N]`.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

SAMPLE_RATE = 22050
HOP_LENGTH = 256
OPSET_VERSION = 15  # piper/train/export_onnx.py
NOISE_SCALE, LENGTH_SCALE, NOISE_W = 0.667, 1.0, 0.8  # Piper's inference defaults

MEDIUM = dict(
    spec_channels=1024 // 2 + 1,
    segment_size=8192 // HOP_LENGTH,
    inter_channels=192,
    hidden_channels=192,
    filter_channels=768,
    n_heads=2,
    n_layers=6,
    kernel_size=3,
    p_dropout=0.1,
    resblock="2",
    resblock_kernel_sizes=(3, 5, 7),
    resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    upsample_rates=(8, 8, 4),
    upsample_initial_channel=256,
    upsample_kernel_sizes=(16, 16, 8),
    n_speakers=1,
    gin_channels=0,
    use_sdp=True,
)


@contextmanager
def _quiet():
    """Silence weight_norm / TorchScript-exporter deprecation and tracer warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _mean_frames_per_token(model, n_symbols: int) -> float:
    """Mean ceil(duration) per token at Piper's default scales on a fixed random probe."""
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(1234)
        x = torch.randint(0, n_symbols, (8, 64))
        lengths = torch.full((8,), 64, dtype=torch.long)
        h, _, _, x_mask = model.enc_p(x, lengths)
        logw = model.dp(h, x_mask, reverse=True, noise_scale=NOISE_W)
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * LENGTH_SCALE)
        return float(w_ceil.sum() / x_mask.sum())


def _calibrate_durations(model, n_symbols: int, target: float) -> float:
    """Bisect the duration flow's output bias so mean frames/token is ~target; returns it."""
    m = model.dp.flows[0].m  # reverse ElementwiseAffine: logw = (z - m) * exp(-logs)
    lo, hi = -6.0, 6.0  # log-shift of the durations
    with torch.no_grad():
        for _ in range(20):
            mid = (lo + hi) / 2
            m[0] = -mid
            if _mean_frames_per_token(model, n_symbols) < target:
                lo = mid
            else:
                hi = mid
        m[0] = -(lo + hi) / 2
    return _mean_frames_per_token(model, n_symbols)


def build_piper_medium(seed: int = 0, n_symbols: int = 256,
                       frames_per_token: float | None = 3.0):
    """Piper's SynthesizerTrn in the medium shape, random weights, eval, weight norm removed."""
    from piper.train.vits.models import SynthesizerTrn

    torch.manual_seed(seed)
    with _quiet():
        model = SynthesizerTrn(n_vocab=n_symbols, **MEDIUM)
    model.eval()
    with torch.no_grad():
        model.dec.remove_weight_norm()
    if frames_per_token is not None:
        _calibrate_durations(model, n_symbols, frames_per_token)
    return model


def _attach_infer_forward(model) -> None:
    """Replace forward by the infer wrapper of piper/train/export_onnx.py."""

    def infer_forward(text, text_lengths, scales, sid=None):
        audio = model.infer(
            text,
            text_lengths,
            noise_scale=scales[0],
            length_scale=scales[1],
            noise_scale_w=scales[2],
            sid=sid,
        )[0].unsqueeze(1)
        return audio

    model.forward = infer_forward


def export_piper_medium(path, seed: int = 0, n_symbols: int = 256,
                        frames_per_token: float | None = 3.0) -> Path:
    """Build the random-weight medium model and export it to ONNX as Piper does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_piper_medium(seed, n_symbols, frames_per_token)
    _attach_infer_forward(model)
    sequences = torch.randint(0, n_symbols, (1, 50), dtype=torch.long)
    sequence_lengths = torch.LongTensor([sequences.size(1)])
    scales = torch.FloatTensor([NOISE_SCALE, LENGTH_SCALE, NOISE_W])
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            model=model,
            args=(sequences, sequence_lengths, scales, None),
            f=str(path),
            verbose=False,
            opset_version=OPSET_VERSION,
            input_names=["input", "input_lengths", "scales", "sid"],
            output_names=["output"],
            dynamic_axes={
                "input": {0: "batch_size", 1: "phonemes"},
                "input_lengths": {0: "batch_size"},
                "output": {0: "batch_size", 2: "time"},
            },
            dynamo=False,
        )
    return path


class PiperMedium:
    """onnxruntime runner for an exported Piper(-shaped) VITS."""

    sample_rate = SAMPLE_RATE

    def __init__(self, path, threads: int = 1):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])

    def synthesize(self, token_ids: list[int], noise_scale: float = NOISE_SCALE,
                   length_scale: float = LENGTH_SCALE, noise_w: float = NOISE_W) -> np.ndarray:
        ids = np.asarray(token_ids, dtype=np.int64)[None, :]
        feeds = {
            "input": ids,
            "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
            "scales": np.array([noise_scale, length_scale, noise_w], dtype=np.float32),
        }
        out = self.session.run(None, feeds)[0]
        return np.ascontiguousarray(out.reshape(-1), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames-per-token", type=float, default=3.0,
                        help="duration calibration target; <= 0 keeps the raw random init")
    args = parser.parse_args()
    fpt = args.frames_per_token if args.frames_per_token > 0 else None
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        onnx_path = export_piper_medium(Path(tmp) / "piper-medium.onnx", seed=args.seed,
                                        frames_per_token=fpt)
        export_s = time.perf_counter() - t0
        model = build_piper_medium(args.seed, frames_per_token=fpt)
        n_params = sum(p.numel() for p in model.parameters())
        n_infer = n_params - sum(p.numel() for p in model.enc_q.parameters())
        print(f"parameters: {n_params / 1e6:.2f} M total, {n_infer / 1e6:.2f} M in the "
              f"inference graph (without enc_q); mean frames/token at default scales: "
              f"{_mean_frames_per_token(model, 256):.2f}")
        print(f"ONNX: {onnx_path.stat().st_size / 2**20:.1f} MiB, opset {OPSET_VERSION}, "
              f"export {export_s:.1f} s")

        voice = PiperMedium(onnx_path, threads=args.threads)
        rng = np.random.default_rng(args.seed)
        voice.synthesize(rng.integers(0, 256, 60).tolist())  # warm-up
        rtfs, audio_s = [], []
        for _ in range(5):
            ids = rng.integers(0, 256, int(rng.integers(55, 66))).tolist()
            t0 = time.perf_counter()
            wav = voice.synthesize(ids)
            dt = time.perf_counter() - t0
            dur = len(wav) / voice.sample_rate
            rtfs.append(dt / dur)
            audio_s.append(dur)
            print(f"  {len(ids)} tokens -> {dur:.2f} s audio in {dt * 1000:.0f} ms "
                  f"(RTF {dt / dur:.4f})")
        print(f"median compute s per audio s ({args.threads} thread(s)): "
              f"{float(np.median(rtfs)):.4f}  (audio {min(audio_s):.2f}-{max(audio_s):.2f} s)")

        # Parity: noise_scale = noise_w = 0 makes VITS deterministic.
        _attach_infer_forward(model)
        ids = np.random.default_rng(123).integers(0, 256, 60)
        with torch.no_grad():
            ref = model(torch.from_numpy(ids)[None], torch.tensor([len(ids)]),
                        torch.tensor([0.0, LENGTH_SCALE, 0.0])).reshape(-1).numpy()
        got = voice.synthesize(ids.tolist(), noise_scale=0.0, noise_w=0.0)
        same_len = len(ref) == len(got)
        diff = float(np.abs(ref - got).max()) if same_len else float("nan")
        print(f"parity (noise 0): torch {len(ref)} samples, onnx {len(got)} samples, "
              f"lengths {'equal' if same_len else 'DIFFER'}, max abs diff {diff:.2e} "
              f"(torch peak {np.abs(ref).max():.3f})")
        # Lengths also with Piper's default scales (the duration noise differs between runtimes,
        # so only the ratio to the hop is checked there).
        wav = voice.synthesize(ids.tolist())
        print(f"default scales: onnx {len(wav)} samples = {len(wav) / HOP_LENGTH:.0f} frames "
              f"x hop {HOP_LENGTH}")
        if not same_len or not math.isfinite(diff):
            raise SystemExit("parity check failed")


if __name__ == "__main__":
    main()
