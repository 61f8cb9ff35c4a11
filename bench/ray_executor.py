"""The suite on a Ray cluster (issue 16 §6): ``kdbench suite --executor ray [--address HOST:PORT]``.

:class:`RayExecutor` stands where the local process pool stands in :class:`bench.suite.JobQueue`: each
(protocol, method, seed) run is one Ray task asking for ``--cpus-per-run`` CPUs (default 1) and
``--gpus-per-run`` GPUs (default 0; 1 with ``--device cuda``), and its Ray future is the pool future the
queue already handles (progress lines, provisional and final tables, the first failure stopping the rest).

- **Teachers once.** The suite's own process trains or loads every teacher, assistant and ensemble member
  and builds their output caches before it hands a protocol's runs out (as with the pool); the tasks find
  them in the cache. On a cluster of several machines the cache must be on a filesystem they share
  (``KDBENCH_CACHE``), as must the results folder.
- **A lost worker is retried and resumes.** A task whose worker dies (killed, out of memory, its node
  lost) is retried by Ray up to ``max_retries`` times; runs on Ray checkpoint every epoch unless
  ``--checkpoint-every`` says otherwise, so the retry resumes from the last checkpoint and ends with the
  numbers an uninterrupted run would have (:mod:`bench.checkpoint`). A run that fails with an error (not
  a lost worker) is not retried: the error is the suite's.
- **Results from many machines.** Every record goes to its own path, named by its identity, and is written
  atomically (a temporary file renamed), so any number of workers may write into one results folder; two
  tasks of the same run cannot exist in one suite.

Without ``--address`` a local Ray instance is started for the suite and stopped after it (loopback only).
Ray is an optional extra: ``pip install 'kdbench[ray]'``.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import os
from dataclasses import replace
from typing import Any

from bench.errors import ConfigError

#: how often Ray reruns a task whose worker process was lost
MAX_RETRIES = 3


def check_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        raise ConfigError("--executor ray: Ray is not installed; pip install 'kdbench[ray]' (the default "
                          "--executor local needs nothing)")


def _ray_run(protocol, method: str, seed: int, root: str, options) -> Any:
    """One run in a Ray worker (the pool worker's body, without its signal handling, which Ray owns)."""
    from bench.suite import _run_and_report

    return _run_and_report(protocol, method, seed, root, options)


class RayExecutor:
    """``submit(fn, *job)`` -> a ``concurrent.futures.Future`` of the run, on Ray; see the module docstring."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
                 max_retries: int = MAX_RETRIES):
        check_ray()
        import ray

        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            # the workers get this process's environment (KDBENCH_CACHE, the shipped teachers' folder, ...)
            env = {k: v for k, v in os.environ.items() if k.startswith("KDBENCH_")}
            kwargs: dict[str, Any] = {"address": address} if address else {"include_dashboard": False,
                                                                            "num_cpus": os.cpu_count()}
            ray.init(**kwargs, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
        self._remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries,
                                  retry_exceptions=False)(_ray_run)
        self._refs: list[Any] = []
        self._processes = None  # the pool's attribute JobQueue reads; Ray owns its workers

    def submit(self, fn, protocol, method: str, seed: int, root: str, options) -> cf.Future:
        """``fn`` is the local pool's worker function; on Ray every job runs :func:`_ray_run`. A run that
        does not checkpoint is made to checkpoint every epoch, so a retried run resumes."""
        if not options.checkpoint_every:
            options = replace(options, checkpoint_every=1)
        ref = self._remote.remote(protocol, method, seed, root, options)
        self._refs.append(ref)
        return ref.future()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        if cancel_futures:
            self.stop()
        elif wait and self._refs:
            self._ray.wait(self._refs, num_returns=len(self._refs))
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()

    def stop(self) -> None:
        """Cancel every run not finished (a running one's worker is killed; its checkpoint stays, so a
        rerun of the suite resumes it)."""
        for ref in self._refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or already gone
                pass
