"""The first README command as a newcomer meets it (issue 15): a fresh clone, an empty ``HOME`` and cache.

Clones the repository's committed ``HEAD`` into a temporary folder, then runs the README's first
command there in its two parts (the install, then ``.venv/bin/kdbench suite``, each verbatim from the
README) with ``HOME`` an empty folder and no ``KDBENCH_CACHE``/``XDG_CACHE_HOME``, stdout a pipe (as in
a CI log). It timestamps every line the suite prints and reports, in seconds from the start of the
command: the install, the first table on screen (a provisional or final per-protocol table), the first
classification table, and the whole suite; plus the time at which each protocol's provisional and
final table appeared.

Run: ``python tests/benchmarks/cold_suite.py [--until-first-table] [--keep] [--log FILE]`` (minutes to an hour on 2
cores; ``--until-first-table`` stops the suite once the first classification table is printed). It
prints one JSON object; the README's table "The first command, cold" quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE_PART = " && .venv/bin/kdbench suite"
TABLE_LINE = re.compile(r"^(?P<key>\S+@v\d+): (?P<kind>provisional table|all its runs are done)")


def first_readme_command() -> tuple[str, str]:
    """(install part, suite part) of the README's first command."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_repo import readme_commands

    command = readme_commands()[0]
    if not command.endswith(SUITE_PART):
        raise SystemExit(f"the README's first command no longer ends with {SUITE_PART!r}: {command}")
    return command[: -len(SUITE_PART)], SUITE_PART.removeprefix(" && ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--until-first-table", action="store_true",
                        help="stop the suite when the first classification table is printed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone (its path is printed)")
    parser.add_argument("--log", type=Path, help="also write every line the suite prints, timestamped, to this file")
    args = parser.parse_args()
    install, suite = first_readme_command()
    work = Path(tempfile.mkdtemp(prefix="kdbench-cold-"))
    clone, home = work / "kdbench", work / "home"
    home.mkdir()
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("KDBENCH_CACHE", "XDG_CACHE_HOME", "VIRTUAL_ENV")}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    report: dict[str, object] = {"commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, text=True,
                                                         capture_output=True).stdout.strip(),
                                 "cores": os.cpu_count(), "install_command": install, "suite_command": suite}
    start = time.perf_counter()
    subprocess.run(["bash", "-c", install], cwd=clone, env=env, check=True)
    report["install_s"] = round(time.perf_counter() - start, 1)
    tables: list[dict[str, object]] = []
    process = subprocess.Popen(["bash", "-c", suite], cwd=clone, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    stopped = False
    log = args.log.open("w") if args.log else None
    for line in process.stdout:
        if log:
            log.write(f"{time.perf_counter() - start:8.1f} s  {line}")
            log.flush()
        match = TABLE_LINE.match(line)
        if not match:
            continue
        at = round(time.perf_counter() - start, 1)
        tables.append({"protocol": match["key"], "kind": "provisional" if "provisional" in match["kind"] else
                       "final", "at_s": at})
        print(f"{at:8.1f} s  {line.rstrip()}", file=sys.stderr, flush=True)
        if args.until_first_table and match["key"].startswith("classification"):
            os.killpg(process.pid, signal.SIGINT)  # the suite stops its own workers on SIGINT
            stopped = True
            break
    process.wait()
    if log:
        log.close()
    end = round(time.perf_counter() - start, 1)
    report["tables"] = tables
    report["first_table_s"] = tables[0]["at_s"] if tables else None
    first_cls = [t["at_s"] for t in tables if str(t["protocol"]).startswith("classification")]
    report["first_classification_table_s"] = first_cls[0] if first_cls else None
    report["suite_s"] = None if stopped else round(end - report["install_s"], 1)
    report["whole_command_s"] = None if stopped else end
    report["exit_code"] = None if stopped else process.returncode
    print(json.dumps(report, indent=2))
    if args.keep:
        print(f"clone kept in {clone}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if stopped or process.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
