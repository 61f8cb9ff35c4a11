"""Multi-process data-parallel runs with PyTorch's own DDP (issue 16 §3).

Launch: ``torchrun --nproc-per-node N kdbench run ...`` (or ``kdbench run --gpus N ...``, which starts
torchrun itself). :func:`init_from_env` finds torchrun's variables (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``) and joins the process group: ``nccl`` on CUDA (one GPU per process, ``cuda:LOCAL_RANK``),
``gloo`` on the CPU (what CI tests, with 2 processes).

What changes in a run of N processes (:mod:`bench.engine`, :mod:`bench.runner`):

- **Data.** Every epoch's order and augmentation draws are the single-process ones (every rank draws
  them from the same seeded generator); each global batch of the protocol's size is split across the
  ranks, rank r taking samples r, r+N, r+2N, ... (:func:`shard`): what ``DistributedSampler`` gives with
  a per-rank batch of size/N. The protocol's batch size must be a multiple of N. The number of steps,
  the rates and the global batch are the protocol's.
- **Gradients.** The :class:`~bench.distill.Distiller` (student and the method's extras) is wrapped in
  ``DistributedDataParallel``, which averages their gradients; parameters a method trains with its own
  optimiser (a DML peer, an adversary's discriminator: ``Method.auxiliary_parameters``) have their
  gradients averaged by a hook as they accumulate (:func:`average_gradients_of`). Buffers (batch-norm
  statistics) are rank 0's, as DDP broadcasts them at each forward.
- **State.** A method that keeps per-sample state gathers the whole global batch before updating it
  (:func:`all_gather_cat`; CRD's memory bank), so every rank holds the same bank.
- **Teachers.** Rank 0 trains or loads the teachers and builds their output caches first; the other
  ranks wait, then load them from the cache (:func:`rank_zero_first`).
- **Metrics.** Rank 0 evaluates the whole test split and the metrics are broadcast to every rank
  (:func:`broadcast_object`); the epoch log's loss terms are averaged over the ranks. Rank 0 alone
  writes the record, its CSV and checkpoints.

The same seed gives the same result for the same number of processes; the number of processes is part
of the run's identity (a 2-process run is its own entry, labelled ``2 processes``), because batch-norm
statistics are computed per shard.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from bench.errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_world = World()


def world() -> World:
    return _world


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str) -> tuple[World, str]:
    """Join torchrun's process group if this process was launched by it; return the world and this
    rank's device (``cuda`` becomes ``cuda:LOCAL_RANK``). Without torchrun: a world of one, ``device``."""
    global _world
    if not launched_by_torchrun():
        return _world, device
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    kind = torch.device(device).type
    if kind == "cuda":
        if torch.cuda.device_count() <= local_rank:
            raise ConfigError(f"torchrun started process {local_rank} of this machine but it has only "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if kind == "cuda" else "gloo")
    _world = World(rank, size, local_rank)
    return _world, device


def shutdown() -> None:
    global _world
    if dist.is_initialized():
        dist.destroy_process_group()
    _world = World()


def check_batch_size(batch_size: int, what: str = "the protocol's batch size") -> None:
    """Refuse, before any training, a global batch that does not split evenly over the processes."""
    if _world.active and batch_size % _world.size:
        raise ConfigError(f"{what} {batch_size} does not split evenly over {_world.size} processes; "
                          f"run with a number of processes that divides it")


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global batch's sample positions: every N-th from position ``rank``."""
    return indices[_world.rank::_world.size] if _world.active else indices


def wrap(distiller: nn.Module) -> nn.Module:
    """``distiller`` in ``DistributedDataParallel`` (made once per distiller), or itself in a world of one."""
    if not _world.active:
        return distiller
    wrapped = distiller.__dict__.get("_ddp")
    if wrapped is None:
        from torch.nn.parallel import DistributedDataParallel

        # an init stage trains only part of the student and the extras: DDP must look for unused parameters
        wrapped = DistributedDataParallel(distiller, device_ids=None,
                                          find_unused_parameters=bool(distiller.method.init_stage))
        distiller.__dict__["_ddp"] = wrapped
    return wrapped


def average_gradients_of(params: list[nn.Parameter]) -> None:
    """Average the gradients of ``params`` over the ranks each time one accumulates (parameters outside
    DDP's module, stepped by a method's own optimiser)."""
    if not _world.active:
        return
    for param in params:
        if getattr(param, "_kdbench_averaged", False):
            continue

        def hook(p: torch.Tensor) -> None:
            dist.all_reduce(p.grad)
            p.grad.div_(_world.size)

        param.register_post_accumulate_grad_hook(hook)
        param._kdbench_averaged = True


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` (equal shapes) concatenated along dimension 0 in rank order; ``tensor``
    itself in a world of one. Not differentiable: for state updates only."""
    if not _world.active:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(_world.size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def all_reduce_mean(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ranks' mean of each tensor of ``values`` (the same keys on every rank)."""
    if not _world.active:
        return values
    out = {}
    for name in sorted(values):
        value = values[name].detach().clone().float()
        dist.all_reduce(value)
        out[name] = value / _world.size
    return {name: out[name] for name in values}


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not _world.active:
        return obj
    box = [obj if _world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if _world.active:
        dist.barrier()


@contextlib.contextmanager
def rank_zero_first() -> Iterator[None]:
    """Rank 0 runs the block first (training or loading teachers into the shared cache), then the others."""
    if _world.active and not _world.is_main:
        dist.barrier()
    yield
    if _world.active and _world.is_main:
        dist.barrier()
