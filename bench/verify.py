"""``kdbench verify-record``: earn a record its ``verified`` status by rerunning it.

A record's ``status`` is never read from its file (:func:`bench.results.load_record`
derives it). This reruns the record's seed with the protocol, method, resolved
hyperparameters, teachers and data its identity names, compares every metric
(exactly by default, or within ``tolerance`` points), and on a match writes the
proof ``seed-<n>.verified.json`` next to the record: the record's digest, the
rerun's metrics and where it ran. Any later edit of the record changes its
digest, so the proof no longer matches and the record reads as ``claimed``.

Refused before any training: a protocol whose code specification differs from
the record's (the changed fields are named), and a rerun whose identity would
differ (a teacher file not given or another one, another ``--data-root``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.identity import changed_fields, protocol_spec
from bench.paths import atomic_write_text
from bench.results import ResultsStore, load_record, verified_path


@dataclass(frozen=True)
class MetricCheck:
    """One metric of the record against the rerun."""

    metric: str
    recorded: float | None
    rerun: float | None
    ok: bool


def compare_metrics(recorded: dict[str, Any], rerun: dict[str, Any], tolerance: float = 0.0) -> list[MetricCheck]:
    """Every metric of either run, matched when both are ``None`` (not applicable) or both numbers
    within ``tolerance`` (0: exactly equal)."""
    checks = []
    for name in sorted(set(recorded) | set(rerun)):
        a, b = recorded.get(name), rerun.get(name)
        ok = (a is None and b is None) or (a is not None and b is not None and math.isclose(
            a, b, rel_tol=0.0, abs_tol=tolerance))
        checks.append(MetricCheck(name, a, b, ok))
    return checks


def verify_record(path: str | Path, options, tolerance: float = 0.0,
                  results: str | Path | None = None, protocol=None) -> tuple[list[MetricCheck], dict[str, Any]]:
    """Rerun the record at ``path`` (with ``options``: device, data root, teacher files) and compare.

    ``protocol``: the protocol the record names when no registry holds it (a ``--protocol-file``);
    default: the registered protocol of the record's name.

    Returns the metric checks and the rerun's record; writes the ``.verified.json`` proof when every
    check passes. The rerun's record goes to ``results`` (default: a temporary folder, removed).
    """
    from bench.protocol import get_protocol
    from bench.runner import run_identity, run_one

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"record file {path} does not exist")
    record = load_record(path)
    if results is not None and Path(results).resolve() == path.resolve().parents[3]:
        raise ConfigError(f"--results {results} is the store holding {path}: the rerun would replace the record "
                          "it is checking; give another folder")
    identity, recorded = record["identity"], record["protocol"]
    protocol = protocol or get_protocol(recorded["name"])
    if protocol.spec_hash != recorded["hash"] or protocol.key != recorded["key"]:
        fields = changed_fields(recorded.get("spec", {}), protocol_spec(protocol))
        raise ConfigError(
            f"{path}: recorded under {recorded['key']} (protocol hash {recorded['hash'][:12]}); this code's "
            f"protocol {protocol.name!r} is {protocol.key} (hash {protocol.short_hash}), changed: "
            f"{', '.join(fields) or 'version'}; it cannot be rerun with this code")
    protocol = protocol.with_seeds((record["seed"],))
    from bench.datacheck import locate_data_root  # the dataset's own folder, as run and suite read it

    options = replace(options, hparams=dict(identity["hparams"]), force=True,
                      precision=identity.get("precision", "fp32"),
                      data_root=locate_data_root(protocol.dataset.get("name"), options.data_root))
    mine = run_identity(protocol, identity["method"], record["seed"], options)
    if mine != identity:
        differ = [k for k in ("hparams", "teachers", "data", "processes") if mine.get(k) != identity.get(k)]
        hint = {"teachers": "give the record's teacher file(s) with --teacher / --ensemble-teacher",
                "data": "give the dataset the record was made from with --data-root (same files, sizes, mtimes)",
                "hparams": "the method's hyperparameters no longer resolve the same way",
                "processes": "rerun under torchrun with the record's number of processes"}
        raise ConfigError(f"{path}: this rerun would not have the record's identity: {', '.join(differ)} "
                          f"differ ({'; '.join(hint[k] for k in differ)})")
    with tempfile.TemporaryDirectory(prefix="kdbench-verify-") as scratch:
        rerun = run_one(protocol, identity["method"], record["seed"], ResultsStore(results or scratch), options)
    checks = compare_metrics(record["metrics"], rerun["metrics"], tolerance)
    if all(c.ok for c in checks):
        proof = {"digest": record["digest"], "metrics": rerun["metrics"], "tolerance": tolerance,
                 "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                 "provenance": rerun["provenance"]}
        atomic_write_text(verified_path(path), json.dumps(proof, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return checks, rerun
