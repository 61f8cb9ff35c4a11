"""Where KDBench caches generated data, teachers and teacher outputs, and how it writes files.

Every file is written atomically (:func:`atomic_write_bytes`: a ``.tmp-*`` file
in the same folder, fsync, rename), so a crash never leaves half a file under
the real name. A temporary file left by a SIGKILL is removed by the next write
into its folder once it is older than :data:`STALE_TMP_SECONDS` (only the
tool's own ``.tmp-`` files). Cache files are saved with a content hash next to
them (:func:`save_checked`) and checked on load (:func:`load_checked`): a
missing, mismatching or unreadable cache file is reported with a
:class:`CacheIntegrityWarning` and rebuilt, never used.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"
#: a temporary file this old was left by a killed writer (real writes take seconds)
STALE_TMP_SECONDS = 3600.0
HASH_SUFFIX = ".sha256"


class CacheIntegrityWarning(UserWarning):
    """A cache file failed its content check (edited, truncated or unreadable) and is rebuilt."""


def cache_dir() -> Path:
    """``$KDBENCH_CACHE``, else ``$XDG_CACHE_HOME/kdbench``, else ``~/.cache/kdbench``."""
    if os.environ.get("KDBENCH_CACHE"):
        return Path(os.environ["KDBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kdbench"


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` into memory, then :func:`atomic_write_bytes` (no half-written files)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary file next to ``path``, fsync, then rename."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync, then rename."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results and tables are for everyone to read
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # e.g. a full disk (ENOSPC) during write: name the file we were writing
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_tmp(folder: Path, max_age: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete ``folder``'s ``.tmp-*`` files older than ``max_age`` seconds (left by a killed writer);
    return them. Younger ones may belong to a writer still running and are kept."""
    removed = []
    cutoff = time.time() - max_age
    for tmp in Path(folder).glob(TMP_PREFIX + "*"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another process cleaned it first
            pass
    return removed


def hash_path(path: Path) -> Path:
    """``x.pt`` -> ``x.pt.sha256``: where :func:`save_checked` keeps a cache file's content hash."""
    return Path(path).with_name(Path(path).name + HASH_SUFFIX)


def save_checked(obj: Any, path: Path) -> str:
    """``torch.save`` ``obj`` atomically to ``path`` and its sha256 to :func:`hash_path` (written
    second, so a crash in between leaves a file without a hash, which is rebuilt); return the hash."""
    import hashlib
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    atomic_write_text(hash_path(path), digest + "\n")
    return digest


def load_checked(path: Path, what: str) -> Any | None:
    """The object saved by :func:`save_checked` at ``path``, loaded weights-only; ``None`` when there
    is none or when the file fails its check (hash missing or different, truncated, unreadable), in
    which case a :class:`CacheIntegrityWarning` names the file and the caller rebuilds it."""
    import torch

    path = Path(path)
    if not path.is_file():
        return None
    problem = None
    expected = hash_path(path).read_text().strip() if hash_path(path).is_file() else None
    if expected is None:
        problem = f"has no content hash ({hash_path(path).name})"
    elif sha256_file(path) != expected.lower():
        problem = "does not match its content hash (edited or truncated)"
    else:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is rebuilt
            problem = f"cannot be read ({type(exc).__name__})"
    warnings.warn(f"{what} {path} {problem}; rebuilding it", CacheIntegrityWarning, stacklevel=2)
    return None
