"""The default job: every protocol of a tier with every method that applies.

First, on a still idle machine, every chain is checked and every model the runs
will use is profiled (latency must not be measured under load). Then, protocol
by protocol, this process prepares the data, the teachers (assistants, ensemble
members) and their output caches, and hands the protocol's independent
(method, seed) runs to a pool of ``jobs`` worker processes (one torch thread
each by default), which work on them while this process prepares the next
protocol. Progress: on a terminal, a bar counts runs done, with the ETA;
otherwise (a CI log, ``nohup``, a pipe) one line per finished run (method, seed,
primary metric, seconds, ETA) is printed. When a protocol's last run is done,
``on_protocol_done`` is called with it (the command line prints its table then),
always from this process's main thread.

Stopping: SIGINT (Ctrl-C) and SIGTERM stop the whole suite (:func:`stop_on_signals`).
The first signal cancels every queued run, stops every worker (each unwinds its
run, so its temporary files go and no record is written; one that has not exited
after :data:`STOP_GRACE_SECONDS` is killed) and is raised as
:class:`~bench.errors.Interrupted`; further signals while stopping are ignored, so
a double Ctrl-C cannot interrupt the clean-up. No worker outlives the suite.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from dataclasses import dataclass, replace

from tqdm.auto import tqdm

from bench.errors import ConfigError, Interrupted, UnknownNameError
from bench.identity import data_fingerprint
from bench.protocol import Protocol, get_protocol, protocols_of_tier
from bench.registry import METHODS
from bench.results import ResultsStore
from bench.runner import RunOptions, Workspace, build_method, run_identity, run_one


def applicable_methods(protocol: Protocol) -> list[str]:
    """Registered methods that can run on ``protocol``: their task matches (``tasks=None`` means any)
    and the protocol declares the ensemble or assistant chain they need."""
    return [name for name in METHODS.names() if METHODS.get(name).unmet_requirement(protocol) is None]


def default_methods(protocol: Protocol) -> list[str]:
    """The methods the suite runs on ``protocol`` when none are named: the applicable ones whose
    ``default_tiers`` include the protocol's tier (:attr:`bench.method.Method.default_tiers`)."""
    return [name for name in applicable_methods(protocol)
            if METHODS.get(name).default_tiers is None or protocol.tier in METHODS.get(name).default_tiers]


def check_method_names(methods: list[str] | None, chosen: list[Protocol]) -> None:
    """Before anything runs: every name in ``methods`` is a registered method (else
    :class:`UnknownNameError`, listing the valid ones) that applies to at least one chosen protocol
    (else :class:`ConfigError` saying why not), so that a typo never makes a suite that runs nothing."""
    for name in methods or ():
        if name not in METHODS:
            raise UnknownNameError("method", name, METHODS.names())
        reasons = [METHODS.get(name).unmet_requirement(p) for p in chosen]
        if all(reasons):
            why = "; ".join(f"{p.key}: {r}" for p, r in zip(chosen, reasons, strict=True))
            raise ConfigError(f"method {name!r} applies to none of the chosen protocols ({why})")


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
        if ws.uses_output_cache:  # not under random crops: their teachers run live
            for teacher in teaching.teachers_of_student:
                ws.teacher_output_cache(method.teacher_features, teacher)


#: seconds a stopped worker gets to unwind its run before it is killed
STOP_GRACE_SECONDS = 10.0
#: longest the main process sleeps in a wait before it looks for a signal
POLL_SECONDS = 0.2
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stopping = {"depth": 0, "signum": None, "saved": {}}


def _raise_once(signum: int, frame) -> None:
    """The suite's SIGINT/SIGTERM handler: raise :class:`Interrupted` on the first signal only."""
    if _stopping["signum"] is None:
        _stopping["signum"] = signum
        raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` once, then are ignored until the
    outermost block is left (so that the clean-up of the first signal runs to its end). Nests; a no-op
    outside the main thread, where Python cannot take signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _stopping["depth"] == 0:
        _stopping["saved"] = {sig: signal.signal(sig, _raise_once) for sig in _STOP_SIGNALS}
    _stopping["depth"] += 1
    try:
        yield
    finally:
        _stopping["depth"] -= 1
        if _stopping["depth"] == 0:
            for sig, handler in _stopping["saved"].items():
                signal.signal(sig, handler)
            _stopping["signum"] = None


_in_job = {"running": False, "signum": None}


def _worker_signal(signum: int, frame) -> None:
    """A worker's SIGINT/SIGTERM handler: inside a run, unwind it (its temporary files are removed and
    no record is written); between runs, exit at once. Later signals are ignored while unwinding."""
    if _in_job["signum"] is not None:
        return
    _in_job["signum"] = signum
    if _in_job["running"]:
        raise Interrupted(signum)
    os._exit(128 + signum)


def _worker_init() -> None:
    """Pool initializer: a worker stops on SIGINT (a terminal's Ctrl-C reaches the whole process group)
    and on SIGTERM (sent by the suite when it stops), and never runs another job after either."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _worker_signal)


@dataclass(frozen=True)
class RunDone:
    """What one finished run reports to the suite's progress: which run, its primary metric (``None``
    when its identity was already stored and nothing ran) and its wall seconds."""

    protocol: str
    method: str
    seed: int
    metric: str
    value: float | None
    seconds: float

    @property
    def ran(self) -> bool:
        return self.value is not None


def _run_and_report(protocol: Protocol, method: str, seed: int, root: str, options: RunOptions) -> RunDone:
    start = time.perf_counter()
    record = run_one(protocol, method, seed, ResultsStore(root), options)
    value = None if record is None else record["metrics"].get(protocol.primary_metric)
    return RunDone(protocol.key, method, seed, protocol.primary_metric,
                   None if value is None else float(value), time.perf_counter() - start)


def _worker(protocol: Protocol, method: str, seed: int, root: str, options: RunOptions) -> RunDone:
    """One run in a pool worker. The protocol itself is sent (not its name), so that a user's protocol
    file, which no registry holds, runs there too."""
    _in_job["running"] = True
    try:
        return _run_and_report(protocol, method, seed, root, options)
    except Interrupted as stop:  # unwound: leave the pool rather than take the next job
        os._exit(128 + stop.signum)
    finally:
        _in_job["running"] = False


Job = tuple[Protocol, str, int, str, RunOptions]  # protocol, method, seed, results root, options


def pending_jobs(protocol: Protocol, methods: list[str], store: ResultsStore, options: RunOptions) -> list[Job]:
    """The (method, seed) runs of ``protocol`` whose identity (``bench.runner.run_identity``) the store
    does not hold yet (all of them with ``options.force``); nothing is loaded or trained to tell.

    Seed-major: every method's first seed, then every method's second, ..., so that a provisional table
    of every method (one seed) is possible long before the protocol is done (:class:`JobQueue`)."""
    data = data_fingerprint(protocol.dataset, options.data_root)
    return [(protocol, m, s, str(store.root), options) for s in protocol.seeds for m in methods
            if options.force or not store.exists(protocol.key, run_identity(protocol, m, s, options, data))]


def run_suite(tier: str, results: str, options: RunOptions, jobs: int = 2,
              methods: list[str] | None = None, protocols: list[str | Protocol] | None = None,
              on_protocol_done: Callable[[Protocol], None] | None = None,
              on_first_seed_done: Callable[[Protocol, int], None] | None = None,
              executor: Callable[[], Any] | None = None) -> list[Protocol]:
    """Run the tier's protocols (or the given ones: names, or protocols such as a user's file) with their
    applicable methods and seeds; ``on_protocol_done(protocol)`` is called (in this thread) as soon as
    the last run of a protocol that had runs to do is finished, ``on_first_seed_done(protocol, seed)``
    when every method's first pending seed is done and other runs of the protocol remain. ``executor``:
    makes the pool the runs go to instead of local processes (``bench.ray_executor.RayExecutor``)."""
    chosen = ([p if isinstance(p, Protocol) else get_protocol(p) for p in protocols] if protocols
              else protocols_of_tier(tier))
    check_method_names(methods, chosen)
    store = ResultsStore(results)
    plans: list[tuple[Protocol, list[str], list[Job]]] = []
    for protocol in chosen:
        names = default_methods(protocol) if methods is None else [m for m in applicable_methods(protocol)
                                                                    if m in methods]
        pending = pending_jobs(protocol, names, store, options)
        if pending:
            plans.append((protocol, sorted({job[1] for job in pending}), pending))
    with stop_on_signals():
        for protocol, names, _ in plans:
            check_and_profile(protocol, names, options)
        with JobQueue(jobs, sum(len(p) for _, _, p in plans), options.progress, on_protocol_done,
                      on_first_seed_done, executor if plans else None) as jobs_queue:
            for index, (protocol, names, pending) in enumerate(plans):
                if index == 1:  # the first table first: the next protocol's preparation would slow its runs
                    jobs_queue.until_first_table()
                # while a protocol prepares, the earlier ones report
                jobs_queue.while_reporting(lambda p=protocol, n=names: prepare(p, n, options))
                jobs_queue.submit(pending)
    return chosen


def execute(todo: list[Job], jobs: int, progress: bool) -> None:
    """Run prepared jobs in this process (``jobs <= 1``) or on a pool of ``jobs`` worker processes."""
    with JobQueue(jobs, len(todo), progress) as jobs_queue:
        jobs_queue.submit(todo)


class JobQueue:
    """Runs submitted jobs now (``jobs <= 1``) or on a pool of ``jobs`` worker processes, so that
    the caller can prepare the next protocol meanwhile. Leaving the ``with`` block waits for every
    job; the first failure cancels what has not started and is raised. SIGINT or SIGTERM inside the
    block cancels every queued job and stops every worker at once (see the module docstring)."""

    def __init__(self, jobs: int, total: int, progress: bool,
                 on_protocol_done: Callable[[Protocol], None] | None = None,
                 on_first_seed_done: Callable[[Protocol, int], None] | None = None,
                 executor: Callable[[], Any] | None = None):
        self.progress = progress
        self.bar = tqdm(total=total, desc="runs", unit="run", disable=None if progress else True)
        self.report = ProgressLines(total, max(jobs, 1)) if progress and self.bar.disable else None
        self.on_protocol_done = on_protocol_done
        self.on_first_seed_done = on_first_seed_done
        self._left: dict[str, int] = {}  # protocol key -> its runs not finished yet
        self._first_seed: dict[str, tuple[int, int]] = {}  # protocol key -> (its first pending seed, runs left)
        self._protocols: dict[str, Protocol] = {}
        self._tables_due = 0  # protocols whose first (provisional or final) table is due
        self._finished: queue.SimpleQueue[RunDone] = queue.SimpleQueue()  # filled by the pool's thread
        self.pool = None
        if executor is not None:  # e.g. Ray: its workers, its retries; the same futures
            self.pool = executor()
        elif jobs > 1:
            self.pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                               initializer=_worker_init)
        self.futures: list[cf.Future] = []
        self._workers: dict[int, mp.Process] = {}  # every worker the pool started, by pid
        self._signals = stop_on_signals()

    def submit(self, todo: list[Job]) -> None:
        self._raise_first_failure()
        for protocol, _, seed, *_ in todo:
            self._left[protocol.key] = self._left.get(protocol.key, 0) + 1
            self._protocols[protocol.key] = protocol
            first, left = self._first_seed.setdefault(protocol.key, (seed, 0))
            if seed == first:
                self._first_seed[protocol.key] = (first, left + 1)
        for protocol, method, seed, root, options in todo:
            if self.pool is None:
                self._finished.put(_run_and_report(protocol, method, seed, root,
                                                   replace(options, progress=self.progress)))
                self._drain()
            else:
                future = self.pool.submit(_worker, protocol, method, seed, root, replace(options, progress=False))
                future.add_done_callback(self._done)
                self.futures.append(future)
                self._workers.update(self.pool._processes or {})  # noqa: SLF001 - spawned by submit
        self._drain()

    def until_first_table(self) -> None:
        """Report finished runs until a protocol's first table (provisional or final) is due, i.e. every
        method of the first protocol has its first seed, or until nothing is left to wait for."""
        while self.pool is not None and self.futures and not self._tables_due:
            if all(f.done() for f in self.futures):
                break
            time.sleep(POLL_SECONDS)  # the main thread wakes for signals; the pool thread fills the queue
            self._drain()
            self._raise_first_failure()

    def while_reporting(self, work: Callable[[], None]) -> None:
        """Do ``work`` (the next protocol's preparation: teachers, output caches) while the runs already
        handed out keep being reported: their progress lines and tables appear when they finish, not when
        ``work`` does. ``work`` runs in a helper thread and the main thread drains finished runs every
        :data:`POLL_SECONDS` (and stays the one that handles signals); without a pool it just runs."""
        if self.pool is None or not self.futures:
            work()
            return
        failure: list[BaseException] = []

        def target() -> None:
            try:
                work()
            except BaseException as exc:  # handed to the main thread
                failure.append(exc)

        helper = threading.Thread(target=target, name="kdbench-prepare", daemon=True)
        helper.start()
        while helper.is_alive():
            helper.join(POLL_SECONDS)
            self._drain()
            self._raise_first_failure()
        if failure:
            raise failure[0]

    def _done(self, future: cf.Future) -> None:
        """Runs in the pool's thread: only hands the result to the main thread (:meth:`_drain`)."""
        if not future.cancelled() and future.exception() is None:
            self._finished.put(future.result())

    def _drain(self) -> None:
        """In the main thread: count, report and, when a protocol's last run is in, announce it."""
        while True:
            try:
                done = self._finished.get_nowait()
            except queue.Empty:
                return
            self.bar.set_postfix_str(f"{done.method} seed {done.seed}", refresh=False)
            self.bar.update(1)
            if self.report is not None:
                self.report.line(done)
            self._left[done.protocol] -= 1
            first, left = self._first_seed[done.protocol]
            if done.seed == first:
                self._first_seed[done.protocol] = (first, left - 1)
                if left == 1 and self._left[done.protocol] > 0:
                    self._tables_due += 1
                    if self.on_first_seed_done is not None:
                        self.on_first_seed_done(self._protocols[done.protocol], first)
            if self._left[done.protocol] == 0:
                self._tables_due += 1
                if self.on_protocol_done is not None:
                    self.on_protocol_done(self._protocols[done.protocol])

    def _raise_first_failure(self) -> None:
        for future in self.futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()

    def __enter__(self) -> JobQueue:
        self._signals.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
                self._stop_workers()
            elif self.pool is not None:
                self._finish(failed=exc_type is not None)
                if exc_type is None:
                    self._drain()
        except KeyboardInterrupt:  # a signal while waiting for the jobs
            self._stop_workers()
            raise
        finally:
            self.bar.close()
            self._signals.__exit__(None, None, None)

    def _finish(self, failed: bool) -> None:
        """Wait for every job and raise the first failure. After a failure (here or in the caller),
        cancel what has not started and let what runs finish. A signal meanwhile propagates at once."""
        if not failed:
            try:
                self._wait_all()
            except Exception:
                self._finish(failed=True)
                raise
        else:
            for future in self.futures:
                future.cancel()
            self._wait_all(raise_failure=False)
        self.pool.shutdown(wait=True)  # every job is done: returns at once

    def _wait_all(self, raise_failure: bool = True) -> None:
        """Wait for every job, raising the first failure. The wait wakes every :data:`POLL_SECONDS`:
        a signal may be delivered to one of the pool's threads, and the main thread runs Python's
        handler only when it wakes (a plain blocking wait slept through SIGTERM until the jobs ended)."""
        pending = set(self.futures)
        while pending:
            done, pending = cf.wait(pending, timeout=POLL_SECONDS, return_when=cf.FIRST_EXCEPTION)
            for future in done:
                if raise_failure and not future.cancelled() and future.exception() is not None:
                    raise future.exception()
            if raise_failure:
                self._drain()

    def _stop_workers(self) -> None:
        """Cancel every queued job, SIGTERM every worker, wait up to :data:`STOP_GRACE_SECONDS` for it
        to unwind its run, then SIGKILL what is left; nothing of the pool outlives this call."""
        if self.pool is None:
            return
        self.pool.shutdown(wait=False, cancel_futures=True)  # Ray's executor cancels and kills its tasks here
        processes = list(self._workers.values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        self.pool = None


class ProgressLines:
    """One line per finished run, for output that is not a terminal (where tqdm's bar is hidden):
    ``[  3/167] classification-mini@v2 kd seed 1: top1 72.40 in 31 s; about 35 min left``.

    The estimate is the mean wall time of the runs that trained so far, times the runs left, over
    the ``jobs`` running at once; runs skipped because their identity is stored count as done.
    """

    def __init__(self, total: int, jobs: int, stream=None):
        self.total, self.jobs, self.stream = total, jobs, stream or sys.stdout
        self.done = 0
        self.seconds: list[float] = []

    def line(self, run: RunDone) -> str:
        self.done += 1
        if run.ran:
            self.seconds.append(run.seconds)
        what = (f"{run.metric} {run.value:.2f} in {run.seconds:.0f} s" if run.ran
                else "already in the results, skipped")
        text = f"[{self.done:>{len(str(self.total))}}/{self.total}] {run.protocol} {run.method} seed {run.seed}: {what}"
        eta = self.eta_seconds()
        if eta is not None:
            text += f"; about {format_duration(eta)} left"
        print(text, file=self.stream, flush=True)
        return text

    def eta_seconds(self) -> float | None:
        left = self.total - self.done
        if not self.seconds or left <= 0:
            return None
        return sum(self.seconds) / len(self.seconds) * left / self.jobs


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1 h 05 min``: an estimate's precision, not a stopwatch's."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
