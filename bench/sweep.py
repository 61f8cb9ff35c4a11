"""The teacher-assistant size sweep: TAKD with each assistant of ``Protocol.assistant_sweep``.

Mirzadeh et al. (AAAI 2020) claim the best assistant is not always the one in
the middle. The sweep runs ``takd`` on every seed of the protocol with each
one-assistant chain teacher -> A -> student, next to the references it is
judged against (the ``baseline`` student and single-teacher ``kd``, run into the
ordinary results store if missing), and builds the table that
:mod:`leaderboard.sweep` writes as Markdown, CSV and a plot of student accuracy
against assistant size.

Sweep records live in their own store, ``<sweeps>/<assistant>/<protocol key>/takd/``,
so they never enter the leaderboard's tables; each records its chain in the
method's hyperparameters and its stages' training cost like any TAKD record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.protocol import Protocol
from bench.registry import PROTOCOLS
from bench.results import ResultsStore
from bench.runner import RunOptions
from bench.stats import Summary, paired_difference, summarize
from bench.suite import Job, check_and_profile, execute, prepare

METHOD = "takd"
REFERENCES = ("baseline", "kd")


@dataclass(frozen=True)
class SweepRow:
    """One assistant size: its own accuracy and that of the students it taught."""

    assistant: str
    assistant_params: int
    assistant_gmacs: float | None
    assistant_metric: float | None  # the assistant's own test value of the primary metric
    student: Summary
    diff_kd: Summary | None
    diff_baseline: Summary | None
    total_train_seconds: float | None
    is_protocol_default: bool


@dataclass(frozen=True)
class SweepTable:
    protocol: Protocol
    rows: tuple[SweepRow, ...]
    references: dict[str, Summary]  # baseline and kd students


def sweep_protocols() -> list[str]:
    from bench.protocol import get_protocol

    return [n for n in PROTOCOLS.names() if get_protocol(n).assistant_sweep]


def assistant_store(sweeps: str | Path, assistant: str) -> ResultsStore:
    return ResultsStore(Path(sweeps) / assistant)


def run_assistant_sweep(protocol: Protocol, results: str | Path, sweeps: str | Path, options: RunOptions,
                        jobs: int = 2) -> SweepTable:
    """Run what is missing (references and every assistant on every seed), then build the table."""
    if not protocol.assistant_sweep:
        raise ConfigError(f"protocol {protocol.key!r} has no 'assistant_sweep'; protocols with one: "
                          f"{', '.join(sweep_protocols()) or '(none)'}")
    per_assistant = {a: replace(options, hparams={"assistants": [a]}) for a in protocol.assistant_sweep}
    for opts in per_assistant.values():  # every chain is checked, every model profiled, before any training
        check_and_profile(protocol, [METHOD], opts)
    check_and_profile(protocol, list(REFERENCES), options)
    reference_store = ResultsStore(results)
    todo: list[Job] = [(protocol, m, s, str(reference_store.root), options) for m in REFERENCES
                       for s in protocol.seeds if options.force or not reference_store.exists(protocol.key, m, s)]
    if todo:
        prepare(protocol, sorted({m for _, m, _, _, _ in todo}), options)
    for assistant, opts in per_assistant.items():
        store = assistant_store(sweeps, assistant)
        pending = [(protocol, METHOD, s, str(store.root), opts) for s in protocol.seeds
                   if options.force or not store.exists(protocol.key, METHOD, s)]
        if pending:
            prepare(protocol, [METHOD], opts)
        todo += pending
    execute(todo, jobs, options.progress)
    return build_sweep_table(protocol, results, sweeps)


def build_sweep_table(protocol: Protocol, results: str | Path, sweeps: str | Path) -> SweepTable:
    """The sweep's table from the stored records of every assistant and the two references."""
    primary = protocol.primary_metric
    reference_store = ResultsStore(results)
    references = {m: _by_seed(reference_store, protocol, m) for m in REFERENCES}
    rows = []
    for assistant in protocol.assistant_sweep:
        records = _records(assistant_store(sweeps, assistant), protocol, METHOD)
        if not records:
            continue
        scores = {r["seed"]: r["metrics"][primary] for r in records}
        stage = records[0]["teaching"]["stages"][-1]
        totals = [r["cost"]["total_train_seconds"] for r in records]
        rows.append(SweepRow(
            assistant=assistant,
            assistant_params=stage["efficiency"]["params"],
            assistant_gmacs=stage["efficiency"].get("gmacs"),
            assistant_metric=stage["metrics"].get(primary),
            student=summarize(scores.values()),
            diff_kd=paired_difference(scores, references["kd"]) if references["kd"] else None,
            diff_baseline=paired_difference(scores, references["baseline"]) if references["baseline"] else None,
            total_train_seconds=summarize(totals).mean,
            is_protocol_default=(assistant,) == protocol.assistants,
        ))
    rows.sort(key=lambda row: row.assistant_params)
    return SweepTable(protocol, tuple(rows), {m: summarize(v.values()) for m, v in references.items() if v})


def _records(store: ResultsStore, protocol: Protocol, method: str) -> list[dict[str, Any]]:
    found = []
    for seed in protocol.seeds:
        if store.exists(protocol.key, method, seed):
            record = store.read(protocol.key, method, seed)
            if record["protocol"]["hash"] != protocol.spec_hash:
                raise ConfigError(f"{store.path(protocol.key, method, seed)} was written under another "
                                  f"specification of {protocol.key} (hash {record['protocol']['hash'][:12]})")
            found.append(record)
    return found


def _by_seed(store: ResultsStore, protocol: Protocol, method: str) -> dict[int, float]:
    if not store.root.exists():
        return {}
    return {r["seed"]: r["metrics"][protocol.primary_metric] for r in _records(store, protocol, method)}
