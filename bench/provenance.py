"""Where a result came from: commit, dirty flag, package versions, hardware, time."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("kdbench", "torch", "torchvision", "timm", "mmengine", "numpy")
_REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def processor_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return processor_name()


#: what the tool writes and never reads to train: a publish with ``--force`` rewrites committed records and
#: tables of the runs it repeats, which says nothing about the code that produced them
OUTPUT_FOLDERS = ("leaderboard/records/", "leaderboard/tables/", "leaderboard/sweeps/")


def dirty_files() -> list[str] | None:
    """Tracked files with uncommitted changes (staged or not), sorted; ``None`` outside a git checkout.
    Changes under :data:`OUTPUT_FOLDERS` are not counted (the shipped teachers in ``leaderboard/teachers``
    are: runs read them).

    A record names the commit it was produced from; with changes on top, no commit reproduces it,
    so ``suite --publish`` and ``sweep --publish`` refuse to run while this is not empty.
    """
    status = _git("status", "--porcelain", "--untracked-files=no")
    if status is None:
        return None
    changed = (line.split(maxsplit=1)[1].split(" -> ")[-1] for line in status.splitlines() if line.strip())
    return sorted(path for path in changed if not path.startswith(OUTPUT_FOLDERS))


def collect(device: str, threads: int) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    dirty = dirty_files()
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if dirty is None else bool(dirty),
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": processor_name(),
        "device": device,
        "device_name": device_name(device),
        "threads": threads,
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
