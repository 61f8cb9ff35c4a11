"""The default job: every protocol of a tier with every method that applies.

Per protocol, the data, the teacher and the teacher-output cache are prepared
once in this process; the independent (method, seed) runs then go to a pool of
``jobs`` worker processes (one torch thread each by default, so both cores of a
laptop are used), with a progress bar of runs done and the ETA.
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


def prepare(protocol: Protocol, methods: list[str], options: RunOptions) -> None:
    """Before the runs fork off: train (or load) the teacher, build the teacher-output cache,
    and profile the student and teacher on a still idle machine."""
    built = [build_method(protocol, m, options.hparams) for m in methods]
    ws = Workspace(protocol, options)
    for method in built:  # every chain is checked before any teacher is trained
        ws.validate(method)
    ws.profile(protocol.student)
    for method in built:
        teaching = ws.teaching(method)  # trains (or loads) teachers, assistants and ensemble members
        for _, teacher in teaching.stages:
            ws.profile(teacher.model_name)
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
    todo: list[Job] = []
    for protocol in chosen:
        names = [m for m in applicable_methods(protocol) if methods is None or m in methods]
        pending = [(protocol, m, s, str(store.root), options) for m in names for s in protocol.seeds
                   if options.force or not store.exists(protocol.key, m, s)]
        if pending:
            prepare(protocol, sorted({m for _, m, _, _, _ in pending}), options)
        todo += pending
    execute(todo, jobs, options.progress)
    return chosen


def execute(todo: list[Job], jobs: int, progress: bool) -> None:
    """Run prepared jobs in this process (``jobs <= 1``) or on a pool of ``jobs`` worker processes."""
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=None if progress else True)
    if jobs <= 1:
        for protocol, method, seed, root, options in todo:
            run_one(protocol, method, seed, ResultsStore(root), replace(options, progress=progress))
            bar.update(1)
    else:
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_worker, p.name, p.seeds, m, s, root, replace(o, progress=False))
                       for p, m, s, root, o in todo]
            try:
                for future in cf.as_completed(futures):
                    method, seed, _ = future.result()
                    bar.set_postfix_str(f"{method} seed {seed}", refresh=False)
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    bar.close()
