"""The teacher-assistant size sweep: TAKD with each assistant of ``Protocol.assistant_sweep``.

Mirzadeh et al. (AAAI 2020) claim the best assistant is not always the one in
the middle. The sweep runs ``takd`` on every seed of the protocol with each
one-assistant chain teacher -> A -> student, next to the references it is
judged against (the ``baseline`` student and single-teacher ``kd``, run into the
ordinary results store if missing), and builds the table that
:mod:`leaderboard.sweep` writes as Markdown, CSV and a plot of student accuracy
against assistant size.

Sweep records live in their own store, ``<sweeps>/<assistant>/<protocol key>/takd/<entry>/``,
so they never enter the leaderboard's tables; each records its chain in the
method's hyperparameters (and so in its identity) and its stages' training cost
like any TAKD record. Records are found by identity (``bench.runner.run_identity``):
a record of another protocol specification, data or chain is not this sweep's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.protocol import Protocol
from bench.registry import PROTOCOLS
from bench.results import ResultsStore
from bench.identity import data_fingerprint
from bench.runner import RunOptions, run_identity
from bench.stats import Summary, paired_difference, summarize
from bench.suite import Job, check_and_profile, execute, pending_jobs, prepare

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
    per_assistant = assistant_options(protocol, options)
    for opts in per_assistant.values():  # every chain is checked, every model profiled, before any training
        check_and_profile(protocol, [METHOD], opts)
    check_and_profile(protocol, list(REFERENCES), options)
    reference_store = ResultsStore(results)
    todo: list[Job] = pending_jobs(protocol, list(REFERENCES), reference_store, options)
    if todo:
        prepare(protocol, sorted({m for _, m, _, _, _ in todo}), options)
    for assistant, opts in per_assistant.items():
        pending = pending_jobs(protocol, [METHOD], assistant_store(sweeps, assistant), opts)
        if pending:
            prepare(protocol, [METHOD], opts)
        todo += pending
    execute(todo, jobs, options.progress)
    return build_sweep_table(protocol, results, sweeps, options)


def assistant_options(protocol: Protocol, options: RunOptions) -> dict[str, RunOptions]:
    """The run options of each assistant of the sweep: ``options`` with the one-assistant chain."""
    return {a: replace(options, hparams={"assistants": [a]}) for a in protocol.assistant_sweep}


def build_sweep_table(protocol: Protocol, results: str | Path, sweeps: str | Path,
                      options: RunOptions | None = None) -> SweepTable:
    """The sweep's table from the stored records of every assistant and the two references (those
    whose identity is the one ``options``, default ones, would run)."""
    options = options or RunOptions()
    primary = protocol.primary_metric
    reference_store = ResultsStore(results)
    references = {m: _by_seed(reference_store, protocol, m, options) for m in REFERENCES}
    rows = []
    for assistant, opts in assistant_options(protocol, options).items():
        records = _records(assistant_store(sweeps, assistant), protocol, METHOD, opts)
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


def _records(store: ResultsStore, protocol: Protocol, method: str, options: RunOptions) -> list[dict[str, Any]]:
    """The stored records of ``method`` on the protocol's seeds whose identity ``options`` would run."""
    data = data_fingerprint(protocol.dataset, options.data_root)
    identities = [run_identity(protocol, method, seed, options, data) for seed in protocol.seeds]
    return [store.read(protocol.key, i) for i in identities if store.exists(protocol.key, i)]


def _by_seed(store: ResultsStore, protocol: Protocol, method: str, options: RunOptions) -> dict[int, float]:
    if not store.root.exists():
        return {}
    return {r["seed"]: r["metrics"][protocol.primary_metric] for r in _records(store, protocol, method, options)}
