"""Bad-input audit of the CLI (issue 17): each case must end in one `error:` line and exit 1
(or click's usage message and exit 2), no traceback, no stray temporary files, earlier
outputs untouched, nothing written by a voice SPEC. Everything happens in a temporary folder.

    .venv/bin/python benchmarks/bad_input_audit.py    # prints PASS/FAIL per case and a count
"""

import glob
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
A = [str(ROOT / ".venv/bin/adavoice"), "--threads", "1"]
W = pathlib.Path(tempfile.mkdtemp(prefix="adavoice-audit-"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ADAVOICE_CACHE": str(W / "cache")}
# a saved voice and a copied base to damage
subprocess.run(
    [
        str(ROOT / ".venv/bin/python"),
        "-c",
        f"""
import adavoice, shutil
v = adavoice.adapt('demo', '{ROOT}/examples/demo-voice', steps=2, max_utterances=6, progress=False)
v.save('{W}/voice')
shutil.copytree('{ROOT}/models/demo', '{W}/base')
""",
    ],
    env=ENV,
    check=True,
    capture_output=True,
)
(W / "afile").write_text("x")


def flip(p, at=0.5):
    b = bytearray(p.read_bytes())
    b[int(len(b) * at)] ^= 0xFF
    p.write_bytes(bytes(b))


def copy(name):
    d = W / f"{name}"
    shutil.copytree(W / "voice", d)
    return d


def base_copy(name):
    d = W / name
    shutil.copytree(W / "base", d, ignore=shutil.ignore_patterns())
    return d


cases = []


def case(name, args, prep=None, expect=(1,), stdin=None):
    cases.append((name, args, prep, expect))


wav = W / "o.wav"
# synth knobs
for knob, val in [
    ("--length-scale", "nan"),
    ("--length-scale", "0"),
    ("--length-scale", "1e9"),
    ("--pitch-shift", "inf"),
    ("--pitch-shift", "-100"),
    ("--energy-scale", "-1"),
    ("--vocoder", "wavenet"),
    ("--length-scale", "abc"),
]:
    case(
        f"synth {knob} {val}",
        ["synth", "Hi.", "--out", wav, knob, val],
        expect=(2,) if val == "abc" else (1,),
    )
case("synth empty text", ["synth", "", "--out", wav])
case("synth punctuation only", ["synth", "...!?", "--out", wav])
case("synth emoji only", ["synth", "😀😀", "--out", wav])
case("synth out is folder", ["synth", "Hi.", "--out", W])
case("synth out under a file", ["synth", "Hi.", "--out", W / "afile" / "x.wav"])
case("synth out .mp3", ["synth", "Hi.", "--out", W / "x.mp3"])
case(
    "synth out exists",
    ["synth", "Hi.", "--out", W / "afile.wav"],
    prep=lambda: (W / "afile.wav").write_bytes(b"keep"),
)
case("synth unknown speaker", ["synth", "Hi.", "--out", wav, "--speaker", "nobody"])
case("synth text-file missing", ["synth", "--text-file", W / "none.txt", "--out-dir", W / "od"])
case(
    "synth text-file latin1",
    ["synth", "--text-file", W / "l1.txt", "--out-dir", W / "od"],
    prep=lambda: (W / "l1.txt").write_bytes("caf\xe9\n".encode("latin-1")),
)
case(
    "synth text-file empty",
    ["synth", "--text-file", W / "e.txt", "--out-dir", W / "od"],
    prep=lambda: (W / "e.txt").write_text("\n\n"),
)
case(
    "synth text + text-file",
    ["synth", "Hi", "--text-file", W / "e.txt", "--out-dir", W / "od"],
    expect=(2,),
)
case("synth model missing", ["synth", "Hi.", "--out", wav, "--model", W / "nomodel"])
case("synth model is a file", ["synth", "Hi.", "--out", wav, "--model", W / "afile"])
# damaged voice bundles
for nm, fn in [
    ("flip weights", lambda d: flip(d / "adapter.safetensors")),
    (
        "truncate weights",
        lambda d: (d / "adapter.safetensors").write_bytes(
            (d / "adapter.safetensors").read_bytes()[:50]
        ),
    ),
    ("delete weights", lambda d: (d / "adapter.safetensors").unlink()),
    ("deep config", lambda d: (d / "adapter_config.json").write_text("[" * 100000)),
    ("config not utf8", lambda d: (d / "adapter_config.json").write_bytes(b"\xff\xfe{")),
    ("config a list", lambda d: (d / "adapter_config.json").write_text("[1]")),
    (
        "config kind other",
        lambda d: (d / "adapter_config.json").write_text(
            json.dumps(
                {**json.loads((d / "adapter_config.json").read_text()), "kind": "adavoice-base"}
            )
        ),
    ),
    (
        "config no checksum",
        lambda d: (d / "adapter_config.json").write_text(
            json.dumps(
                {
                    k: v
                    for k, v in json.loads((d / "adapter_config.json").read_text()).items()
                    if k != "weights_sha256"
                }
            )
        ),
    ),
    (
        "config defaults bad",
        lambda d: (d / "adapter_config.json").write_text(
            json.dumps(
                {
                    **json.loads((d / "adapter_config.json").read_text()),
                    "defaults": {"length_scale": -1},
                }
            )
        ),
    ),
    (
        "config is a folder",
        lambda d: ((d / "adapter_config.json").unlink(), (d / "adapter_config.json").mkdir()),
    ),
    (
        "base hash other",
        lambda d: (d / "adapter_config.json").write_text(
            json.dumps(
                {
                    **json.loads((d / "adapter_config.json").read_text()),
                    "base": {"name": "demo", "content_hash": "0" * 64},
                }
            )
        ),
    ),
]:
    d = W / f"v-{nm.replace(' ', '_')}"
    case(
        f"voice {nm}",
        ["synth", "Hi.", "--voice", d, "--out", wav],
        prep=(lambda d=d, fn=fn: (shutil.copytree(W / "voice", d), fn(d))),
    )
# damaged base
for nm, fn in [
    ("flip weights", lambda d: flip(d / "model.safetensors")),
    ("config deep", lambda d: (d / "config.json").write_text("{" * 50000)),
    ("missing weights", lambda d: (d / "model.safetensors").unlink()),
    (
        "auto_vocoder bad",
        lambda d: (d / "config.json").write_text(
            json.dumps({**json.loads((d / "config.json").read_text()), "auto_vocoder": "wavenet"})
        ),
    ),
    ("speech encoder flipped", lambda d: flip(d / "mel_encoder" / "model.safetensors")),
]:
    d = W / f"b-{nm.replace(' ', '_')}"
    args = (
        [
            "adapt",
            ROOT / "examples/demo-voice",
            "--model",
            d,
            "--out",
            W / f"ad-{nm.replace(' ', '_')}",
            "--untranscribed",
            "--steps",
            "1",
        ]
        if "speech" in nm
        else ["synth", "Hi.", "--model", d, "--out", wav]
    )
    case(f"base {nm}", args, prep=(lambda d=d, fn=fn: (shutil.copytree(W / "base", d), fn(d))))
# universal cache
case(
    "cache under a file",
    ["synth", "Hi.", "--out", W / "u1.wav", "--vocoder", "universal"],
    prep=lambda: ENV.__setitem__("ADAVOICE_CACHE", str(W / "afile" / "cache")),
)
# threads
for t in ["0", "-1", "x"]:
    case(
        f"--threads {t}",
        [*A[:1], "--threads", t, "lang", "list"],
        expect=(2,) if t == "x" else (1,),
    )
# lang show --model
case("lang show model missing", ["lang", "show", "en", "Hi", "--model", W / "none"])
case("lang show model file", ["lang", "show", "en", "Hi", "--model", W / "afile"])
case(
    "lang show model no symbols",
    ["lang", "show", "en", "Hi", "--model", W / "nosym"],
    prep=lambda: ((W / "nosym").mkdir(), (W / "nosym" / "config.json").write_text("{}")),
)
# corpus
case(
    "corpus language de",
    ["corpus", "build", W / "c1", "--language", "de", "--voices", "espeak:de", "--utterances", "1"],
)
case(
    "corpus sox noiseprof",
    [
        "corpus",
        "build",
        W / "c2",
        "--language",
        "en",
        "--voices",
        "flite:rms@noiseprof " + str(W / "np") + "",
        "--utterances",
        "1",
    ],
)
case(
    "corpus sox path arg",
    [
        "corpus",
        "build",
        W / "c3",
        "--language",
        "en",
        "--voices",
        "flite:rms@gain /etc/passwd",
        "--utterances",
        "1",
    ],
)
# adapt
case("adapt out under file", ["adapt", ROOT / "examples/demo-voice", "--out", W / "afile" / "v"])
case("adapt out is file", ["adapt", ROOT / "examples/demo-voice", "--out", W / "afile"])
case(
    "adapt empty metadata",
    ["adapt", W / "emd", "--out", W / "v2"],
    prep=lambda: (
        shutil.copytree(ROOT / "examples/demo-voice", W / "emd"),
        (W / "emd" / "metadata.csv").write_text(""),
    ),
)
case(
    "adapt long transcript",
    ["adapt", W / "lt", "--out", W / "v3"],
    prep=lambda: (
        shutil.copytree(ROOT / "examples/demo-voice", W / "lt"),
        (W / "lt" / "metadata.csv").write_text(
            "".join(f"slt-{i:02d}|{'word ' * 400}\n" for i in range(20))
        ),
    ),
)
case("adapt kind bad", ["adapt", ROOT / "examples/demo-voice", "--out", W / "v4", "--kind", "xyz"])
# eval
case("eval hyp missing", ["eval", "--ref", ROOT / "examples/demo-voice-test", "--hyp", W / "nohyp"])
case(
    "eval recognizer bad",
    [
        "eval",
        "--ref",
        ROOT / "examples/demo-voice-test",
        "--hyp",
        ROOT / "examples/demo-voice-test",
        "--transcripts",
        ROOT / "examples/demo-voice-test/metadata.csv",
        "--recognizer",
        "nope:nothing",
        "--out-dir",
        W / "ev",
    ],
)
passed = 0
fails = []
for name, args, prep, expect in cases:
    if prep:
        prep()
    cmd = [str(a) for a in (args if str(args[0]).endswith("adavoice") else [*A, *args])]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    ENV["ADAVOICE_CACHE"] = str(W / "cache")
    err = r.stderr.strip().splitlines()
    ok = r.returncode in expect and "Traceback" not in r.stderr
    if ok and r.returncode == 1:
        errors = [line for line in err if line.startswith("error:")]
        ok = len(errors) == 1 and err[-1].startswith("error:")
    stray = glob.glob(str(W / "**" / "*.part"), recursive=True) + glob.glob(
        str(W / "**" / ".*.part-*"), recursive=True
    )
    if stray:
        ok = False
    if name == "synth out exists" and (W / "afile.wav").read_bytes() != b"keep":
        ok = False
    if name == "corpus sox noiseprof" and (W / "np").exists():
        ok = False
    passed += ok
    if not ok:
        fails.append((name, r.returncode, r.stderr[-600:], stray))
    print(
        ("PASS " if ok else "FAIL ") + name,
        r.returncode,
        (err[-1][:150] if err else ""),
        flush=True,
    )
print(f"{passed}/{len(cases)} passed")
for f in fails:
    print("FAIL", f)
