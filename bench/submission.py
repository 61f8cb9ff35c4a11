"""Submissions as files, and their verification (issue 17 item 2).

``kdbench submit --protocol P --method M [--results DIR]`` writes one self-contained JSON bundle
(``<P key>__<M>.kdbench.json``): the records of every seed of the protocol for the method's entry, the
method's source file (its text and sha256) and where it comes from (built-in, or the plugin
distribution and version), the protocol's key, hash and specification, the environment the runs had
and the exact command that reruns them. It is written only when it is complete: every protocol seed,
every record from a clean tree of one commit, every record of this code's protocol hash and intact
(its digest); otherwise every problem is listed and nothing is written.

``kdbench verify BUNDLE [--seeds 0] [--import DIR]`` checks the bundle (its digest, each record's
digest: a metric changed by hand is named), that this installation's method source and protocol are
the bundle's, then reruns the named seeds in a fresh results folder and compares every metric:

- **exactly** when the rerun's platform is the bundle's (same platform string, processor, torch and
  torchvision versions): the engine is deterministic on the CPU;
- otherwise within the protocol's **seed noise**: per metric, :data:`NOISE_MULTIPLE` times the sample
  standard deviation of that metric over the bundle's seeds (at least 2 seeds), the tolerance the
  regression gate's statistical mode uses in spirit: a rerun elsewhere must land where another seed
  could have.

On success it writes ``BUNDLE.verified.json`` (the bundle's digest, who verified it, when, on what
machine, the seeds rerun, the mode, tolerances and rerun metrics) and, with ``--import DIR``, copies the
bundle's records into the results folder DIR with a verification proof for every rerun seed, so the
leaderboard shows the entry as ``verified`` or ``claimed (k of n seeds verified)``; records without a
proof stay ``claimed``. On a mismatch every differing metric is listed and nothing is marked.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import inspect
import json
import math
import platform
import shlex
import socket
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError
from bench.identity import protocol_spec, sha256_json
from bench.paths import atomic_write_text, sha256_file
from bench.results import ResultsStore, iter_records, record_digest, verified_path

BUNDLE_KIND = "kdbench-submission"
BUNDLE_SCHEMA = 1
BUNDLE_SUFFIX = ".kdbench.json"
#: across platforms, a rerun's metric may differ from the bundle's by this many seed standard deviations
NOISE_MULTIPLE = 3.0
SAME_PLATFORM_PACKAGES = ("torch", "torchvision")


def bundle_name(protocol_key: str, method: str) -> str:
    return f"{protocol_key}__{method}{BUNDLE_SUFFIX}"


def method_source(method: str) -> dict[str, Any]:
    """The method's source file (path, sha256, text) and origin (built-in file or plugin distribution)."""
    from bench.registry import METHODS

    cls = METHODS.get(method)
    path = Path(inspect.getsourcefile(cls) or "")
    origin = METHODS.source(method)
    distribution = None
    if origin.startswith("plugin "):
        name, version = origin.removeprefix("plugin ").split(" ")[:2]
        distribution = {"name": name, "version": version}
    return {"name": method, "origin": origin, "distribution": distribution, "file": path.name,
            "sha256": sha256_file(path), "text": path.read_text()}


def _entries(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_entry: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_entry.setdefault(record["identity"]["entry"], []).append(record)
    return by_entry


def choose_entry(records: list[dict[str, Any]], entry: str | None, where: str) -> list[dict[str, Any]]:
    """The records of one entry: the one whose identity starts with ``entry``, else the default entry."""
    by_entry = _entries(records)
    if not by_entry:
        raise ConfigError(f"no records in {where}: run the method's seeds first (kdbench run / kdbench suite)")
    if entry:
        found = [e for e in by_entry if e.startswith(entry)]
        if len(found) != 1:
            raise ConfigError(f"--entry {entry}: matches {len(found)} entries in {where}; entries: "
                              + ", ".join(f"{e[:12]} ({by_entry[e][0]['identity']['label'] or 'default'})"
                                          for e in sorted(by_entry)))
        return by_entry[found[0]]
    defaults = [e for e, rs in by_entry.items() if rs[0]["identity"]["default"]]
    if len(defaults) != 1:
        raise ConfigError(f"{where} holds no default entry (the protocol's hyperparameters and teachers); name "
                          "one with --entry: " + ", ".join(f"{e[:12]} ({by_entry[e][0]['identity']['label']})"
                                                           for e in sorted(by_entry)))
    return by_entry[defaults[0]]


def rerun_command(protocol, method: str, entry_records: list[dict[str, Any]]) -> str:
    """The command that reruns every seed of the entry (its non-default hyperparameters as ``--set``)."""
    from bench.runner import build_method

    record = entry_records[0]
    defaults = build_method(protocol, method).hparams
    sets = [f"--set {shlex.quote(f'{k}={json.dumps(v) if not isinstance(v, str) else v}')}"
            for k, v in sorted(record["identity"]["hparams"].items()) if defaults.get(k) != v]
    extra = []
    if record["identity"].get("precision"):
        extra.append(f"--precision {record['identity']['precision']}")
    seeds = " ".join(str(r["seed"]) for r in sorted(entry_records, key=lambda r: r["seed"]))
    return " ".join(["kdbench run", f"--protocol {protocol.name}", f"--method {method}", f"--seeds {seeds}",
                     *sets, *extra])


def make_bundle(protocol, method: str, results: str | Path, entry: str | None = None) -> dict[str, Any]:
    """The submission bundle of ``method`` on ``protocol`` from the records in ``results``; raises a
    :class:`ConfigError` listing every problem when it would be incomplete (see the module docstring)."""
    root = Path(results) / protocol.key / method
    if not root.is_dir():
        raise ConfigError(f"no records of {method} on {protocol.key} in {results} (looked in {root}); run them "
                          f"first: kdbench run --protocol {protocol.name} --method {method} --results {results}")
    records = sorted(choose_entry(list(iter_records(root)), entry, str(root)), key=lambda r: r["seed"])
    problems = []
    seeds = [r["seed"] for r in records]
    missing = [s for s in protocol.seeds if s not in seeds]
    if missing:
        problems.append(f"seeds {missing} of the protocol's {list(protocol.seeds)} have no record")
    for record in records:
        where = f"seed {record['seed']}"
        if record["protocol"]["hash"] != protocol.spec_hash:
            problems.append(f"{where}: recorded under protocol hash {record['protocol']['hash'][:12]}, this code's "
                            f"{protocol.key} is {protocol.short_hash}")
        prov = record["provenance"]
        if prov.get("dirty") is not False:
            problems.append(f"{where}: made from a tree with uncommitted changes (provenance.dirty = "
                            f"{prov.get('dirty')}); commit, then rerun")
    commits = sorted({r["provenance"].get("commit") or "?" for r in records})
    if len(commits) > 1:
        problems.append(f"the records come from {len(commits)} commits ({', '.join(c[:10] for c in commits)}); "
                        "a submission is one commit's")
    if problems:
        raise ConfigError(f"submission of {method} on {protocol.key} is incomplete:\n  - " + "\n  - ".join(problems))
    first = records[0]["provenance"]
    bundle = {
        "kind": BUNDLE_KIND, "schema": BUNDLE_SCHEMA,
        "protocol": {"name": protocol.name, "key": protocol.key, "hash": protocol.spec_hash,
                     "spec": protocol_spec(protocol)},
        "method": method_source(method),
        "entry": {"id": records[0]["identity"]["entry"], "label": records[0]["identity"]["label"],
                  "hparams": records[0]["identity"]["hparams"]},
        "seeds": seeds,
        "records": records,
        "environment": {k: first.get(k) for k in ("commit", "packages", "python", "platform", "processor",
                                                  "device", "device_name", "threads")},
        "command": rerun_command(protocol, method, records),
    }
    for record in bundle["records"]:
        record.pop("status", None)  # derived on load, never part of the evidence
    bundle["digest"] = sha256_json(bundle)
    return bundle


def write_bundle(bundle: dict[str, Any], out: Path) -> Path:
    atomic_write_text(out, json.dumps(bundle, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return out


def read_bundle(path: str | Path) -> dict[str, Any]:
    """The bundle at ``path``, checked: its digest and every record's; raises :class:`DataError` listing
    every part that does not match (a metric edited by hand is named by its seed)."""
    path = Path(path)
    try:
        bundle = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable submission bundle ({exc})") from None
    if not isinstance(bundle, dict) or bundle.get("kind") != BUNDLE_KIND:
        raise DataError(f"{path}: not a KDBench submission bundle (kind {BUNDLE_KIND!r} missing)")
    problems = []
    for record in bundle.get("records", []):
        if record.get("digest") != record_digest(record):
            problems.append(f"record of seed {record.get('seed')}: its digest does not match its content "
                            f"(edited after the run: metrics {record.get('metrics')})")
    if bundle.get("digest") != sha256_json({k: v for k, v in bundle.items() if k != "digest"}):
        problems.append("the bundle's digest does not match its content (edited after kdbench submit wrote it)")
    if problems:
        raise DataError(f"{path}: the bundle was altered:\n  - " + "\n  - ".join(problems))
    return bundle


def same_platform(bundle: dict[str, Any], here: dict[str, Any]) -> bool:
    env = bundle["environment"]
    return (env.get("platform") == here.get("platform") and env.get("processor") == here.get("processor")
            and all((env.get("packages") or {}).get(p) == here["packages"].get(p) for p in SAME_PLATFORM_PACKAGES))


def noise_tolerances(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per metric, :data:`NOISE_MULTIPLE` times its standard deviation over the bundle's seeds."""
    out = {}
    for metric in sorted({m for r in records for m in r["metrics"]}):
        values = [r["metrics"][metric] for r in records if r["metrics"].get(metric) is not None]
        out[metric] = NOISE_MULTIPLE * statistics.stdev(values) if len(values) >= 2 else 0.0
    return out


def verify_bundle(path: str | Path, seeds: list[int] | None, options, by: str | None = None,
                  import_to: str | Path | None = None) -> dict[str, Any]:
    """Rerun ``seeds`` (default: the first of the bundle) of the bundle at ``path`` and compare; see the
    module docstring. Returns the report (``ok``, ``mismatches``, ...); writes the proof when ``ok``."""
    from bench import provenance
    from bench.protocol import get_protocol
    from bench.verify import verify_record

    path = Path(path)
    bundle = read_bundle(path)
    protocol = get_protocol(bundle["protocol"]["name"])
    problems = []
    if protocol.spec_hash != bundle["protocol"]["hash"]:
        problems.append(f"this code's {protocol.key} has hash {protocol.short_hash}, the bundle's "
                        f"{bundle['protocol']['hash'][:12]}")
    method = bundle["method"]
    try:
        here = method_source(method["name"])
    except Exception as exc:  # noqa: BLE001 - named below
        raise ConfigError(f"{path}: method {method['name']!r} is not installed here ({exc}); install "
                          f"{(method.get('distribution') or {}).get('name', 'its plugin')} first") from None
    if here["sha256"] != method["sha256"]:
        problems.append(f"method {method['name']}: the installed source {here['file']} (sha256 {here['sha256'][:12]}) "
                        f"is not the bundle's ({method['sha256'][:12]}): the rerun would run other code")
    if problems:
        raise ConfigError(f"{path}: cannot be verified here:\n  - " + "\n  - ".join(problems))
    by_seed = {r["seed"]: r for r in bundle["records"]}
    seeds = list(seeds) if seeds else [bundle["seeds"][0]]
    unknown = [s for s in seeds if s not in by_seed]
    if unknown:
        raise ConfigError(f"--seeds {unknown}: not in the bundle (its seeds: {sorted(by_seed)})")
    here_env = provenance.collect(options.device, protocol.threads)
    exact = same_platform(bundle, here_env)
    tolerances = {} if exact else noise_tolerances(bundle["records"])
    mismatches, reruns = [], {}
    with tempfile.TemporaryDirectory(prefix="kdbench-verify-bundle-") as scratch:
        for seed in seeds:
            record = dict(by_seed[seed])
            record_path = ResultsStore(Path(scratch) / "bundle").path(protocol.key, record["identity"])
            atomic_write_text(record_path, json.dumps(record, sort_keys=True) + "\n")
            checks, rerun = verify_record(record_path, options, 0.0, Path(scratch) / f"rerun-{seed}")
            reruns[seed] = rerun["metrics"]
            for check in checks:
                allowed = tolerances.get(check.metric, 0.0)
                ok = check.ok or (check.recorded is not None and check.rerun is not None
                                  and math.isclose(check.recorded, check.rerun, rel_tol=0.0, abs_tol=allowed))
                if not ok:
                    mismatches.append(f"seed {seed} {check.metric}: bundle {check.recorded}, rerun {check.rerun}"
                                      + (f" (tolerance {allowed:.4g})" if not exact else " (exact)"))
    report = {"bundle": path.name, "bundle_digest": bundle["digest"], "protocol": protocol.key,
              "method": method["name"], "entry": bundle["entry"]["id"], "seeds": seeds,
              "mode": "exact" if exact else f"seed noise ({NOISE_MULTIPLE:g} std)", "tolerances": tolerances,
              "rerun_metrics": {str(s): m for s, m in reruns.items()}, "ok": not mismatches,
              "mismatches": mismatches, "by": by or f"{getpass.getuser()}@{socket.gethostname()}",
              "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
              "machine": {k: here_env.get(k) for k in ("platform", "processor", "packages", "python", "commit")},
              "python": platform.python_version()}
    if report["ok"]:
        atomic_write_text(path.with_name(path.name.removesuffix(".json") + ".verified.json"),
                          json.dumps(report, indent=2, sort_keys=True) + "\n")
        if import_to is not None:
            import_records(bundle, seeds, report, Path(import_to))
    return report


def import_records(bundle: dict[str, Any], verified: list[int], report: dict[str, Any], root: Path) -> None:
    """The bundle's records into the results folder ``root`` as they were written, with a proof for each
    verified seed (the rest stay ``claimed``). An existing different record is never overwritten."""
    store = ResultsStore(root)
    for record in bundle["records"]:
        target = store.path(record["protocol"]["key"], record["identity"])
        text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n"
        if target.is_file() and json.loads(target.read_text()).get("digest") != record["digest"]:
            raise ConfigError(f"--import {root}: {target} holds another record of the same run; not overwritten")
        atomic_write_text(target, text)
        if record["seed"] in verified:
            proof = {"digest": record["digest"], "bundle_digest": bundle["digest"], "by": report["by"],
                     "time": report["time"], "mode": report["mode"],
                     "metrics": report["rerun_metrics"][str(record["seed"])]}
            atomic_write_text(verified_path(target), json.dumps(proof, indent=2, sort_keys=True) + "\n")
