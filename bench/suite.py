"""The default job: every protocol of a tier with every method that applies.

First, on a still idle machine, every chain is checked and every model the runs
will use is profiled (latency must not be measured under load). Then, protocol
by protocol, this process prepares the data, the teachers (assistants, ensemble
members) and their output caches, and hands the protocol's independent
(method, seed) runs to a pool of ``jobs`` worker processes (one torch thread
each by default), which work on them while this process prepares the next
protocol. A progress bar counts runs done, with the ETA.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
from dataclasses import replace

from tqdm.auto import tqdm

from bench.protocol import Protocol, get_protocol, protocols_of_tier
from bench.registry import METHODS
from bench.results import ResultsStore
from bench.runner import RunOptions, Workspace, build_method, run_one


def applicable_methods(protocol: Protocol) -> list[str]:
    """Registered methods that can run on ``protocol``: their task matches (``tasks=None`` means any)
    and the protocol declares the ensemble or assistant chain they need."""
    return [name for name in METHODS.names() if METHODS.get(name).unmet_requirement(protocol) is None]


def check_and_profile(protocol: Protocol, methods: list[str], options: RunOptions) -> None:
    """Before anything is trained: check every chain, and profile every model the runs will use
    (student, teacher, assistants, ensemble members) while the machine is still idle."""
    built = [build_method(protocol, m, options.hparams) for m in methods]
    ws = Workspace(protocol, options)
    for method in built:
        ws.validate(method)
    for model in dict.fromkeys([protocol.student, *(m for method in built for m in ws.teaching_models(method))]):
        ws.profile(model)


def prepare(protocol: Protocol, methods: list[str], options: RunOptions) -> None:
    """Before the protocol's runs are handed out: train (or load) its teachers, assistants and
    ensemble members, and build their output caches."""
    ws = Workspace(protocol, options)
    for method in [build_method(protocol, m, options.hparams) for m in methods]:
        teaching = ws.teaching(method)
        if options.teacher_output_cache:
            for teacher in teaching.teachers_of_student:
                ws.teacher_output_cache(method.teacher_features, teacher)


def _worker(protocol_name: str, protocol_seeds: tuple[int, ...], method: str, seed: int, root: str,
            options: RunOptions) -> tuple[str, int, bool]:
    protocol = get_protocol(protocol_name).with_seeds(protocol_seeds)
    record = run_one(protocol, method, seed, ResultsStore(root), options)
    return method, seed, record is not None


Job = tuple[Protocol, str, int, str, RunOptions]  # protocol, method, seed, results root, options


def run_suite(tier: str, results: str, options: RunOptions, jobs: int = 2,
              methods: list[str] | None = None, protocols: list[str] | None = None) -> list[Protocol]:
    """Run the tier's protocols (or the named ones) with their applicable methods and seeds."""
    chosen = [get_protocol(p) for p in protocols] if protocols else protocols_of_tier(tier)
    store = ResultsStore(results)
    plans: list[tuple[Protocol, list[str], list[Job]]] = []
    for protocol in chosen:
        names = [m for m in applicable_methods(protocol) if methods is None or m in methods]
        pending = [(protocol, m, s, str(store.root), options) for m in names for s in protocol.seeds
                   if options.force or not store.exists(protocol.key, m, s)]
        if pending:
            plans.append((protocol, sorted({job[1] for job in pending}), pending))
    for protocol, names, _ in plans:
        check_and_profile(protocol, names, options)
    with JobQueue(jobs, sum(len(p) for _, _, p in plans), options.progress) as queue:
        for protocol, names, pending in plans:
            prepare(protocol, names, options)
            queue.submit(pending)
    return chosen


def execute(todo: list[Job], jobs: int, progress: bool) -> None:
    """Run prepared jobs in this process (``jobs <= 1``) or on a pool of ``jobs`` worker processes."""
    with JobQueue(jobs, len(todo), progress) as queue:
        queue.submit(todo)


class JobQueue:
    """Runs submitted jobs now (``jobs <= 1``) or on a pool of ``jobs`` worker processes, so that
    the caller can prepare the next protocol meanwhile. Leaving the ``with`` block waits for every
    job; the first failure cancels what has not started and is raised."""

    def __init__(self, jobs: int, total: int, progress: bool):
        self.progress = progress
        self.bar = tqdm(total=total, desc="runs", unit="run", disable=None if progress else True)
        self.pool = None
        if jobs > 1:
            self.pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
        self.futures: list[cf.Future] = []

    def submit(self, todo: list[Job]) -> None:
        self._raise_first_failure()
        for protocol, method, seed, root, options in todo:
            if self.pool is None:
                run_one(protocol, method, seed, ResultsStore(root), replace(options, progress=self.progress))
                self.bar.update(1)
            else:
                future = self.pool.submit(_worker, protocol.name, protocol.seeds, method, seed, root,
                                          replace(options, progress=False))
                future.add_done_callback(self._done)
                self.futures.append(future)

    def _done(self, future: cf.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            method, seed, _ = future.result()
            self.bar.set_postfix_str(f"{method} seed {seed}", refresh=False)
            self.bar.update(1)

    def _raise_first_failure(self) -> None:
        for future in self.futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.pool is not None:
                if exc_type is None:
                    for future in cf.as_completed(self.futures):
                        future.result()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
            self.bar.close()
