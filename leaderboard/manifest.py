"""Writing rendered files into a folder that may hold a user's files (issue 12 item 2).

Every folder the leaderboard or sweep renderers write into gets a manifest,
``kdbench-manifest.json``: for each file the tool wrote, its name, the writer
that owns it (``leaderboard``, ``sweep <protocol key>``) and the sha256 of what
was written. :func:`write_outputs` guarantees:

- a file that exists and is not in the manifest (a user's ``README.md``, a
  ``*@v1.csv`` someone else wrote), or that was edited since the tool wrote it,
  is never overwritten: the whole write is refused, before any file is
  written, with a message naming every such file, unless ``overwrite`` is
  given (the files then become the tool's);
- a re-render removes only files its own writer listed in the manifest that
  it does not write again (e.g. the table of a protocol key without records
  any more), and only if they are unchanged since; a listed file that was
  edited is left in place and dropped from the manifest;
- every file, the manifest included, is written atomically; the manifest is
  written first with both the old and the new hash of each target, so a crash
  half-way leaves every file still recognised as the tool's own.

Names in a manifest must be plain file names of the folder: a manifest naming
``../x`` or ``a/b`` is refused, so a tampered manifest cannot make the tool
delete anything outside the folder. Two renders into one folder at the same
time are not supported (the later manifest wins).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from bench.errors import DataError, KDBenchError
from bench.paths import atomic_write_bytes, atomic_write_text, sha256_file

MANIFEST_NAME = "kdbench-manifest.json"
MANIFEST_FORMAT = 1


class OutputConflictError(KDBenchError):
    """A file the tool would write exists and was not written by it; the message names the files."""

    exit_code = 2


def read_manifest(out_dir: str | os.PathLike) -> dict[str, dict]:
    """``{name: {"writer": str, "sha256": [hex, ...]}}`` of ``out_dir``'s manifest; empty without one.

    Raises :class:`DataError` naming the manifest when it is not one this tool wrote.
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        files = data["files"] if data.get("format") == MANIFEST_FORMAT else None
        ok = isinstance(files, dict) and all(
            _plain_name(name) and isinstance(entry, dict) and isinstance(entry.get("writer"), str)
            and isinstance(entry.get("sha256"), list) for name, entry in files.items())
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, KeyError, TypeError):
        ok = False
    if not ok:
        raise DataError(f"{path} is not a KDBench output manifest (format {MANIFEST_FORMAT}, plain file names "
                        "only); move it away, or render into another folder")
    return files


def foreign_files(out_dir: str | os.PathLike, names: Iterable[str], manifest: Mapping[str, dict]) -> list[str]:
    """Those of ``names`` that exist in ``out_dir`` and are not the tool's: not listed in ``manifest``,
    edited since it was written, or not a regular file."""
    out = Path(out_dir)
    foreign = []
    for name in names:
        path = out / name
        if not (path.exists() or path.is_symlink()):
            continue
        listed = manifest.get(name)
        if listed is None or path.is_symlink() or not path.is_file() or sha256_file(path) not in listed["sha256"]:
            foreign.append(name)
    return foreign


def check_targets(out_dir: str | os.PathLike, names: Iterable[str], overwrite: bool = False) -> None:
    """Refuse (:class:`OutputConflictError`) when ``out_dir`` is not a folder, or when any of ``names``
    exists there without being the tool's, unless ``overwrite``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputConflictError(f"output folder {out} exists and is not a folder")
    if overwrite or not out.exists():
        return
    foreign = foreign_files(out, names, read_manifest(out))
    if foreign:
        raise OutputConflictError(
            f"{out}: {', '.join(foreign)} already exist{'s' if len(foreign) == 1 else ''} and "
            f"{'was' if len(foreign) == 1 else 'were'} not written by kdbench (not in {MANIFEST_NAME}, or edited "
            "since); refusing to overwrite: choose another --out, or pass --overwrite to replace "
            f"{'it' if len(foreign) == 1 else 'them'}")


def write_outputs(out_dir: str | os.PathLike, files: Mapping[str, bytes], writer: str,
                  overwrite: bool = False) -> list[Path]:
    """Write ``files`` (name -> content) into ``out_dir`` as ``writer``, with the guarantees of the
    module docstring; returns the written paths in the order of ``files``."""
    out = Path(out_dir)
    bad = [name for name in files if not _plain_name(name) or name == MANIFEST_NAME]
    if bad:
        raise ValueError(f"not plain output file names: {bad}")
    check_targets(out, files, overwrite)
    manifest = read_manifest(out) if out.is_dir() else {}
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    try:
        out.mkdir(parents=True, exist_ok=True)
        interim = dict(manifest)
        for name, digest in hashes.items():
            previous = manifest.get(name, {}).get("sha256", []) if (out / name).is_file() else []
            interim[name] = {"writer": writer, "sha256": sorted({*previous, digest})}
        _write_manifest(out, interim)
        paths = []
        for name, data in files.items():
            atomic_write_bytes(out / name, data)
            paths.append(out / name)
        final = {name: entry for name, entry in manifest.items() if name not in files}
        for name, entry in list(final.items()):
            if entry["writer"] == writer:  # an earlier render's file that is not written again
                del final[name]
                path = out / name
                if path.is_file() and not path.is_symlink() and sha256_file(path) in entry["sha256"]:
                    path.unlink()
        final.update({name: {"writer": writer, "sha256": [digest]} for name, digest in hashes.items()})
        _write_manifest(out, final)
    except OSError as exc:
        raise DataError(f"cannot write the output folder {out}: {exc.strerror or exc} "
                        f"({exc.filename or out})") from None
    return paths


def _write_manifest(out: Path, files: Mapping[str, dict]) -> None:
    document = {"format": MANIFEST_FORMAT, "files": dict(sorted(files.items()))}
    atomic_write_text(out / MANIFEST_NAME, json.dumps(document, indent=1, sort_keys=True) + "\n")


def _plain_name(name: object) -> bool:
    """A file name of the folder itself: no separator, not empty, not ``.`` or ``..``."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name and "\\" not in name
