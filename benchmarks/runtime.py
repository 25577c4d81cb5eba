"""Issue 19: the deployable runtime side by side with the torch path and a Piper-medium-shaped
VITS, plus memory per voice, cold start and an HTTP load test. One run, one thread per call.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/runtime.py   # ~6 min on the 2-core CPU

Needs ``pip install piper-tts==1.8.0`` (GPL: this benchmark runs it; the package never imports
it). Writes benchmarks/results/runtime.json and prints the tables for BENCHMARKS.md.

Systems (compute seconds per second of audio, median over sentences x repeats):
- runtime, acoustic only (the mel);
- runtime + fast-vocoder *architecture* (VocoderConfig.small iSTFT vocoder, **random
  weights**: no trained fast vocoder exists yet, issue 18 part 2; its speed does not depend
  on its weights, as Piper's here does not);
- runtime + universal (HiFi-GAN V1, what ``auto`` renders with today);
- torch path as users call it (``Voice``/``BaseModel.synthesize``, vocoder auto: universal,
  bfloat16 autocast where the CPU has it);
- Piper medium (random weights, exported as Piper does; its random duration predictor is
  calibrated to 3 frames a token, see benchmarks/piper_medium.py).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "runtime.json"
SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us, and the rain did not stop.",
]
REPEATS = 3
VOICE = "flite:rms"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def build_bundle(work: Path) -> tuple[Path, str]:
    """The demo base exported with both vocoders: its own trained fast vocoder where it ships
    one (``models/demo/vocoder``), else a random-weight small iSTFT vocoder (speed only), and
    a LoRA voice besides the shipped CLN one. Returns (bundle, the fast row's label)."""
    import torch

    from adavoice.export.bundle import export_bundle
    from adavoice.models.base_model import BaseModel
    from adavoice.models.vocoder import Vocoder, VocoderConfig

    model = work / "demo-copy"
    shutil.copytree(REPO / "models" / "demo", model)
    label = "runtime + fast (trained)"
    if not (model / "vocoder").is_dir():
        torch.manual_seed(0)
        Vocoder(VocoderConfig.small()).save(model / "vocoder", BaseModel.load("demo").cfg.mel,
                                            training={"note": "random weights: speed only"})
        label = "runtime + fast (random weights)"
    from adavoice.api import adapt

    lora = adapt("demo", REPO / "examples" / "demo-voice", kind="lora", steps=20,
                 max_utterances=20, progress=False).save(work / "lora-voice")
    cln = REPO / "adapters" / "demo-transcribed"  # what `make demo` writes
    if not (cln / "adapter_config.json").is_file():
        cln = adapt("demo", REPO / "examples" / "demo-voice", kind="cln",
                    progress=False).save(work / "demo-transcribed")
    return export_bundle(model, work / "bundle", voices=[cln, lora]), label


def lora_graph_cost(bundle: Path) -> dict:
    """What a weight-changing voice costs as its own graph: file size, RSS it adds when
    loaded, and its pass time against the shared graph's (the peft-wrapped decoder keeps the
    LoRA products apart, so the difference is what LoRA matrices fed as inputs would make
    every voice pay)."""
    from adavoice.runtime import Synthesizer

    tts = Synthesizer.load(bundle, threads=1)
    sentence = SENTENCES[1]
    tts.mel(sentence, voice="demo-transcribed")
    tts.mel(sentence, voice="lora-voice")
    times = {"demo-transcribed": [], "lora-voice": []}
    for _ in range(10):
        for name in times:
            times[name].append(timed(lambda name=name: tts.mel(sentence, voice=name))[0])
    shared = statistics.median(times["demo-transcribed"])
    own = statistics.median(times["lora-voice"])
    return {"graph_mb": round((bundle / "voices" / "lora-voice.onnx").stat().st_size / 1e6, 1),
            "shared_graph_ms": shared * 1000,
            "lora_graph_ms": own * 1000, "lora_over_shared": own / shared}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def side_by_side(bundle: Path, work: Path, fast_label: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from adavoice.api import BaseModel
    from adavoice.runtime import Synthesizer
    from benchmarks.piper_medium import PiperMedium, export_piper_medium

    tts = Synthesizer.load(bundle, threads=1)
    base = BaseModel.load("demo")
    piper = PiperMedium(export_piper_medium(work / "piper-medium.onnx", seed=0), threads=1)
    rng = np.random.default_rng(0)
    rate = tts.sample_rate

    systems = {
        "runtime acoustic only": lambda s: tts.mel(s, voice=VOICE).shape[-1] * 256 / rate,
        fast_label: lambda s: len(
            tts.synthesize(s, voice=VOICE, vocoder="fast")[0]) / rate,
        "runtime + universal": lambda s: len(
            tts.synthesize(s, voice=VOICE, vocoder="universal")[0]) / rate,
        "torch path + universal (auto)": lambda s: base.synthesize(
            s, speaker=VOICE).duration_s,
    }
    piper_tokens = {s: rng.integers(1, 256, 2 * len(tts.token_pieces(s)[0]) + 1).tolist()
                    for s in SENTENCES}
    systems["piper medium (random weights)"] = lambda s: len(piper.synthesize(
        piper_tokens[s])) / piper.sample_rate
    for fn in systems.values():  # warm every session and kernel once
        fn(SENTENCES[0])
    ratios: dict[str, list[float]] = {name: [] for name in systems}
    audio: dict[str, float] = {name: 0.0 for name in systems}
    for _ in range(REPEATS):
        for sentence in SENTENCES:
            for name, fn in systems.items():  # interleaved: drift hits every system alike
                seconds, audio_s = timed(lambda fn=fn, sentence=sentence: fn(sentence))
                ratios[name].append(seconds / audio_s)
                audio[name] += audio_s
    table = {name: {"compute_s_per_audio_s": statistics.median(r),
                    "p90": float(np.percentile(r, 90)), "runs": len(r),
                    "audio_s_total": round(audio[name], 2)} for name, r in ratios.items()}
    piper_ratio = table["piper medium (random weights)"]["compute_s_per_audio_s"]
    for row in table.values():
        row["speedup_vs_piper"] = piper_ratio / row["compute_s_per_audio_s"]
    return table


def rss_mb(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


MEMORY_CHILD = """
import sys, json
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from benchmarks.runtime import rss_mb
from adavoice.runtime import Synthesizer
tts = Synthesizer.load(sys.argv[1], threads=1)
for name in tts.voices[:3]:
    tts.synthesize("A sentence to warm the sessions.", voice=name, vocoder="fast")
print(json.dumps({"voices": len(tts.voices), "rss_mb": rss_mb(),
                  "torch_loaded": "torch" in sys.modules}))
"""


def memory(bundle: Path, work: Path) -> dict:
    """RSS after loading and speaking, with 1 voice and with 100 (copies of a voice's tensors
    under 100 names: each is its own file, read and held like any other)."""
    one, many = work / "one-voice", work / "many-voices"
    for target, count in ((one, 1), (many, 100)):
        shutil.copytree(bundle, target, ignore=shutil.ignore_patterns("voices"))
        (target / "voices").mkdir()
        meta = json.loads((bundle / "voices" / "demo-transcribed.json").read_text())
        tensors = (bundle / "voices" / "demo-transcribed.safetensors").read_bytes()
        for index in range(count):
            stem = f"voice-{index:03d}"
            (target / "voices" / f"{stem}.safetensors").write_bytes(tensors)
            (target / "voices" / f"{stem}.json").write_text(json.dumps(
                {**meta, "name": stem, "tensors": f"{stem}.safetensors"}))
    rows = {}
    for label, target in (("1 voice", one), ("100 voices", many)):
        runs = [json.loads(subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(target), str(REPO)], capture_output=True,
            text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout)
            for _ in range(7)]
        rows[label] = {"rss_mb_min": min(r["rss_mb"] for r in runs),
                       "rss_mb_median": statistics.median(r["rss_mb"] for r in runs),
                       "rss_mb_runs": [round(r["rss_mb"], 1) for r in runs],
                       "torch_loaded": runs[0]["torch_loaded"]}
    rows["added_by_99_voices_mb_median"] = (rows["100 voices"]["rss_mb_median"]
                                            - rows["1 voice"]["rss_mb_median"])
    rows["added_by_99_voices_mb_min"] = (rows["100 voices"]["rss_mb_min"]
                                         - rows["1 voice"]["rss_mb_min"])
    return rows


def cold_start(bundle: Path, work: Path) -> dict:
    """Wall time from process start to the first audio file written, each CLI as a user runs
    it: the runtime's and `adavoice synth` (torch), same sentence and voice, median of 3."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    commands = {
        "runtime (python -m adavoice.runtime)": [
            sys.executable, "-m", "adavoice.runtime", str(bundle), SENTENCES[0], "--voice",
            VOICE, "--threads", "1", "--overwrite", "--out", str(work / "cold-rt.wav")],
        "torch path (adavoice synth)": [
            str(Path(sys.executable).parent / "adavoice"), "--threads", "1", "synth",
            SENTENCES[0], "--speaker", VOICE, "--overwrite", "--out",
            str(work / "cold-torch.wav")],
    }
    rows = {}
    for name, command in commands.items():
        times = []
        for _ in range(3):
            seconds, done = timed(lambda command=command: subprocess.run(
                command, capture_output=True, text=True, env=env))
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed: {done.stderr[-500:]}")
            times.append(seconds)
        rows[name] = {"seconds_median": statistics.median(times),
                      "runs": [round(t, 2) for t in times]}
    return rows


def load_test(bundle: Path, requests_per_level: int = 24, limit_s: float = 120.0) -> dict:
    """The server in its own process (2 workers: the cores; queue 16), clients on loopback at
    1, 4 and 16 at once; every response compared with the serial one for its sentence."""
    import http.client
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "adavoice.runtime", "serve", str(bundle), "--port", str(port),
         "--workers", "2", "--queue", "16", "--threads", "1"],
        stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})

    def post(sentence: str) -> tuple[int, bytes, float]:
        start = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", "/synthesize", json.dumps({"text": sentence,
                                                              "voice": VOICE}),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, body, time.perf_counter() - start

    try:
        for _ in range(100):  # wait for it to listen
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET",
                                                                                 "/health")
                break
            except OSError:
                time.sleep(0.1)
        serial = {s: post(s)[1] for s in SENTENCES}
        rows = {}
        for clients in (1, 4, 16):
            jobs = [SENTENCES[i % len(SENTENCES)] for i in range(requests_per_level)]
            lock, results = threading.Lock(), []
            start = time.perf_counter()

            def client(sentence, start=start, lock=lock, results=results):
                if time.perf_counter() - start > limit_s:
                    return
                status, body, latency = post(sentence)
                with lock:
                    results.append((status, body == serial[sentence], latency))

            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(client, jobs))
            wall = time.perf_counter() - start
            ok = [r for r in results if r[0] == 200]
            latencies = sorted(r[2] for r in ok)
            rows[f"{clients} clients"] = {
                "requests": len(results), "ok": len(ok),
                "other_statuses": sorted({r[0] for r in results if r[0] != 200}),
                "all_equal_serial": all(r[1] for r in ok),
                "throughput_rps": len(ok) / wall,
                "p50_s": float(np.percentile(latencies, 50)),
                "p99_s": float(np.percentile(latencies, 99)), "wall_s": wall}
        return rows
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export_s, (bundle, fast_label) = timed(lambda: build_bundle(work))
        size_mb = {p.name: round(p.stat().st_size / 1e6, 1) for p in bundle.glob("*.onnx")}
        result = {
            "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/runtime.py",
            "cpu": cpu_name(), "cores": os.cpu_count(), "threads_per_call": 1,
            "sentences": len(SENTENCES), "repeats": REPEATS, "voice": VOICE,
            "export_s": export_s, "graph_sizes_mb": size_mb,
            "side_by_side": side_by_side(bundle, work, fast_label),
            "lora_voice_graph": lora_graph_cost(bundle),
            "memory": memory(bundle, work),
            "cold_start": cold_start(bundle, work),
            "load_test": load_test(bundle),
        }
    result["wall_s"] = time.time() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print("\n| system | compute s / audio s | p90 | vs Piper medium |\n|---|---|---|---|")
    for name, row in result["side_by_side"].items():
        print(f"| {name} | {row['compute_s_per_audio_s']:.4f} | {row['p90']:.4f} | "
              f"{row['speedup_vs_piper']:.2f}x |")


if __name__ == "__main__":
    main()
