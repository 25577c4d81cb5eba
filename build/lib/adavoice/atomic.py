"""Files that appear complete or not at all, even while several writers save the same path.

Each writer gets its own temporary file in the target's folder (``.<name>.<random>.part``), which
is flushed to disk and renamed over the target only when the writer finished; on any exception,
Ctrl-C included, it is removed. The last complete writer wins; a reader of the target sees one
writer's whole file, never a mix or a truncated one. Files get the permissions any new file gets
(``0o666`` less the umask), not the ``0o600`` of :func:`tempfile.mkstemp`.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> atomic_write_bytes(folder / "a.txt", b"hello")
>>> with atomic_path(folder / "b.txt") as tmp:
...     _ = tmp.write_text("written by any library that takes a path")
>>> sorted(p.name for p in folder.iterdir())
['a.txt', 'b.txt']
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adavoice.errors import OutputError

# NAME_MAX is 255 bytes on common file systems; the prefix, random part and suffix need ~20
_MAX_STEM_CHARS = 200
_CREATE_ATTEMPTS = 100


@contextmanager
def atomic_path(path: str | Path, what: str = "the file") -> Iterator[Path]:
    """Yield a fresh, empty temporary path beside ``path``; when the block ends without an
    exception, the file there replaces ``path`` (fsynced first, so a crash cannot leave an
    empty or partial ``path``). On any exception it is removed and the exception propagates.

    The folder must exist. OutputError (one line, naming ``path``; ``what`` names the content
    in its message) when the temporary file cannot be created, synced or renamed; exceptions
    of the block itself pass through unchanged.
    """
    path = Path(path)
    tmp = _create_unique(path, what)
    try:
        yield tmp
        _fsync(tmp, path, what)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise output_error(path, what, exc) from exc
    except BaseException:  # Ctrl-C and SystemExit included: leave no temporary file behind
        _remove(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, what: str = "the file") -> None:
    """Write ``data`` to ``path`` as :func:`atomic_path` does; OutputError when it cannot."""
    path = Path(path)
    with atomic_path(path, what) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise output_error(path, what, exc) from exc


def _create_unique(path: Path, what: str) -> Path:
    """Create ``.<name>.<random>.part`` exclusively. os.open with mode 0o666 lets the kernel
    apply the umask (and a folder's default ACL), which mkstemp's fixed 0o600 would not."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_CREATE_ATTEMPTS):
        tmp = path.with_name(f".{path.name[:_MAX_STEM_CHARS]}.{secrets.token_hex(6)}.part")
        try:
            os.close(os.open(tmp, flags, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            raise output_error(path, what, exc) from exc
        return tmp
    raise OutputError(f"cannot write {what}: no free temporary name beside it", path=path)


def _fsync(tmp: Path, path: Path, what: str) -> None:
    try:
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise output_error(path, what, exc) from exc


def output_error(path: Path, what: str, exc: BaseException) -> OutputError:
    """One line naming ``path``, not the temporary file the OS error names."""
    reason = getattr(exc, "strerror", None) or getattr(exc, "error_string", None) or str(exc)
    reason = " ".join(str(reason).split()) or type(exc).__name__
    return OutputError(f"cannot write {what} ({reason})", path=path)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MB blocks). Here, with no torch, because the
    runtime checks bundle files with it too."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
