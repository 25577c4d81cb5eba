"""Files written whole or not at all: adavoice.atomic and save_audio, with several writers at
once (real processes), under any umask, and into folders that cannot be written."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from adavoice.atomic import atomic_path, atomic_write_bytes
from adavoice.audio import save_audio
from adavoice.errors import ConfigError, OutputError

REPO = Path(__file__).resolve().parents[1]
SR = 22050


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# ---- atomic_path: replace on success, remove on any exception ---------------------------------
class _Boom(Exception):
    pass


@pytest.mark.parametrize("failure", [None, _Boom(), OSError(28, "No space left on device"),
                                     KeyboardInterrupt(), SystemExit(143)])
@pytest.mark.parametrize("earlier", [None, b"the earlier file"])
def test_atomic_path_replaces_only_on_success(tmp_path, failure, earlier):
    target = tmp_path / "weights.safetensors"
    if earlier is not None:
        target.write_bytes(earlier)
    seen = []

    def write():
        with atomic_path(target) as tmp:
            seen.append(tmp)
            tmp.write_bytes(b"half")
            if failure is not None:
                raise failure
            tmp.write_bytes(b"the new file")

    if failure is None:
        write()
        assert target.read_bytes() == b"the new file"
    else:
        with pytest.raises(type(failure)):
            write()  # the block's own exception passes through unchanged
        assert target.exists() == (earlier is not None)
        if earlier is not None:
            assert target.read_bytes() == earlier
    assert seen[0].parent == tmp_path and seen[0] != target
    assert _leftovers(tmp_path) == []


def test_each_writer_gets_its_own_temporary_file(tmp_path):
    target = tmp_path / "a.wav"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_bytes(b"first")
        second.write_bytes(b"second")
    # contexts close innermost first: `second` lands, then `first` replaces it
    assert target.read_bytes() == b"first" and _leftovers(tmp_path) == []


# ---- permissions: 0o666 less the umask, as for any new file, not mkstemp's 0o600 ---------------
def _write_bytes(path: Path) -> None:
    atomic_write_bytes(path, b"config")


def _write_audio(path: Path) -> None:
    save_audio(path, np.zeros(100, dtype=np.float32), SR)


def _write_with_atomic_path(path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"weights")


@pytest.mark.parametrize("writer", [_write_bytes, _write_audio, _write_with_atomic_path])
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_files_get_the_usual_permissions(tmp_path, writer, umask, mode):
    target = tmp_path / "out.wav"
    target.write_bytes(b"old")
    target.chmod(0o600)  # the replaced file's mode is not inherited either
    previous = os.umask(umask)
    try:
        writer(target)
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == mode


# ---- folders that cannot be written: a typed one-line error naming the path --------------------
def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: a read-only one, or, for root (whom file
    modes do not stop), sysfs, which refuses new files to everyone."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    (folder / "probe").unlink()
    folder.chmod(0o755)
    try:
        Path("/sys/adavoice-probe").touch()
    except OSError:
        return Path("/sys")
    Path("/sys/adavoice-probe").unlink()
    pytest.fail("found no folder this process cannot write to")


@pytest.mark.parametrize("writer, what", [(_write_bytes, "the file"), (_write_audio, "audio"),
                                          (_write_with_atomic_path, "the file")])
@pytest.mark.parametrize("where", ["read-only folder", "parent is a file"])
def test_unwritable_target_is_a_one_line_output_error(tmp_path, writer, what, where):
    if where == "read-only folder":
        target = _unwritable_folder(tmp_path) / "out.wav"
    else:
        (tmp_path / "a_file").write_text("x", encoding="utf-8")
        target = tmp_path / "a_file" / "out.wav"
    try:
        with pytest.raises(OutputError) as info:
            writer(target)
    finally:
        if (tmp_path / "read-only").exists():  # let pytest remove the folder
            (tmp_path / "read-only").chmod(0o755)
    err = info.value
    assert isinstance(err, ConfigError)  # callers catching ConfigError for --out keep working
    assert err.path == str(target) and f"cannot write {what}" in str(err)
    assert "\n" not in str(err) and ".part" not in str(err) and err.fix
    assert not target.exists()


# ---- save_audio with several processes on one path ---------------------------------------------
WRITER = r"""
import sys, threading, time
from pathlib import Path
import numpy as np
from adavoice.audio import Audio

target, folder, value, length, saves = sys.argv[1:6]
audio = Audio(np.full(int(length), float(value), dtype=np.float32), 22050)
(Path(folder) / f"ready-{value}").touch()
while not (Path(folder) / "go").exists():
    time.sleep(0.005)
errors = []

def save_many():
    for _ in range(int(saves)):
        try:
            audio.save(target)
        except Exception as exc:
            errors.append(repr(exc))

threads = [threading.Thread(target=save_many) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{len(errors)} failed saves; first: {errors[:1]}")
sys.exit(1 if errors else 0)
"""


def test_concurrent_writers_never_expose_a_truncated_file(tmp_path):
    control, out = tmp_path / "control", tmp_path / "out"
    control.mkdir()
    target = out / "same.wav"
    # two writers with different, exactly representable content (PCM-16 keeps 0.25 and -0.5)
    expected = {2205: 0.25, 4410: -0.5}
    env = dict(os.environ, OMP_NUM_THREADS="1")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(control),
                                 str(value), str(length), "50"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for length, value in expected.items()]
    deadline = time.monotonic() + 120
    while len(list(control.glob("ready-*"))) < len(writers):
        assert time.monotonic() < deadline and all(w.poll() is None for w in writers)
        time.sleep(0.01)
    (control / "go").touch()
    reads = 0
    while any(w.poll() is None for w in writers):
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            continue
        samples, rate = sf.read(io.BytesIO(data), dtype="float32")  # raises when cut short
        assert rate == SR and len(samples) in expected
        assert np.all(samples == expected[len(samples)])
        reads += 1
    outputs = [w.communicate()[0].decode() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    assert reads > 0 and _leftovers(out) == [] and [p.name for p in out.iterdir()] == ["same.wav"]
