"""The lean train / eval loop: seeding, determinism, a non-finite guard, progress.

One loop serves every method: it asks the :class:`~bench.distill.Distiller` for
named loss terms, sums them, and steps SGD with a cosine or step schedule
(:func:`make_optimizer`). Methods that
change the procedure use the protocol or the method's engine hook
(:meth:`~bench.method.Method.after_step`, e.g. an adversary's own update), not a forked loop.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.checkpoint import Checkpointing
from bench import distributed
from bench.distill import Distiller
from bench.epoch_log import EpochLog, EpochRow
from bench.errors import DataError, KDBenchError, NonFiniteLossError
from bench.precision import DEFAULT as FP32
from bench.precision import grad_scaler
from bench.protocol import Schedule
from bench.task import Split, Task


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for data order and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def set_threads(threads: int) -> None:
    """Set torch's CPU thread count explicitly (results are recorded with it)."""
    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


#: the power of the ``poly`` schedule (SKD's and mmsegmentation's 0.9)
POLY_POWER = 0.9


def make_optimizer(params, schedule: Schedule, total_steps: int, steps_per_epoch: int = 1,
                   lr: float | None = None):
    """SGD at base rate ``lr`` (default ``schedule.lr``) and its rate scheduler, stepped once per step.

    ``cosine``: cosine annealing to 0 over ``total_steps``. ``step``: the rate is multiplied by
    ``schedule.gamma`` once ``m`` epochs of ``steps_per_epoch`` steps are done, for each milestone ``m``;
    the same rates as RepDistiller's per-epoch ``adjust_learning_rate`` (``lr * 0.1 ** #{m < epoch}``,
    epochs counted from 1) and as torch's ``MultiStepLR`` stepped per epoch (``tests/bench/test_schedule.py``).
    ``poly``: ``lr * (1 - step / total_steps) ** 0.9``, the schedule of the segmentation KD papers (SKD,
    CWD) and of mmsegmentation's ``PolyLR`` (power 0.9; mmsegmentation's floor ``eta_min`` 1e-4 is not kept:
    the rate reaches 0 at the last step).
    """
    optimizer = torch.optim.SGD(
        params, lr=schedule.lr if lr is None else lr, momentum=schedule.momentum,
        weight_decay=schedule.weight_decay, nesterov=schedule.nesterov,
    )
    if schedule.lr_schedule == "step":
        lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=[m * steps_per_epoch for m in schedule.milestones], gamma=schedule.gamma)
    elif schedule.lr_schedule == "poly":
        lr_scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=max(total_steps, 1),
                                                             power=POLY_POWER)
    else:
        lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    return optimizer, lr_scheduler


def steps_per_epoch(task: Task, split: Split, batch_size: int, what: str = "the student",
                    drop_last: bool = True) -> int:
    """Training steps in one epoch of ``split``; raises :class:`DataError` with the numbers when that
    is 0, i.e. when the split is smaller than one batch.

    The last partial batch of an epoch is dropped (:meth:`~bench.task.Task.train_batches`), so a
    split of 15 samples at batch 50 would train nothing and still write a record. Refusing (rather
    than keeping the partial batch) changes no number of a published protocol.
    """
    steps = task.batches_per_epoch(split, batch_size, drop_last)
    if steps < 1:
        raise DataError(f"training {what}: the training split ({split.source}) has {len(split)} samples, "
                        f"fewer than one batch of {batch_size}, so it would train 0 steps (the last partial "
                        f"batch is dropped); use a dataset with at least {batch_size} training samples")
    return steps


def check_metric_range(task: Task, metrics: dict[str, float | None]) -> None:
    """Raise :class:`~bench.errors.KDBenchError` naming the metric when a value lies outside the range
    the task declares (``Task.metric_range``, e.g. 0..100 for percentages): a metric of 250 is a bug,
    never a result. ``None`` and NaN (a metric undefined on this test set) pass."""
    bounds = getattr(task, "metric_range", None)
    if bounds is None:
        return
    lo, hi = bounds
    for name, value in metrics.items():
        if value is not None and not math.isnan(value) and not lo <= value <= hi:
            raise KDBenchError(f"task {task.name!r}: metric {name!r} = {value!r} is outside its range "
                               f"{lo:g}..{hi:g}; no record was written")


@dataclass
class TrainStats:
    """What a training run cost and how it ended."""

    steps: int = 0
    wall_seconds: float = 0.0
    final_losses: dict[str, float] = field(default_factory=dict)


def train(
    distiller: Distiller,
    split: Split,
    schedule: Schedule,
    augmentation: str,
    generator: torch.Generator,
    progress: bool = False,
    desc: str = "train",
    device: torch.device | None = None,
    model_name: str | None = None,
    stage: str = "main",
    log: EpochLog | None = None,
    checkpoint: Checkpointing | None = None,
    precision: str = FP32,
) -> TrainStats:
    """Train ``distiller.student`` (and the method's extras) for ``schedule.epochs``.

    ``stage="init"`` runs a two-stage method's init stage instead (``Method.init_stage``): the
    method's ``init_epochs`` epochs of its init losses, training only its ``init_parameters`` at a
    constant rate (``schedule`` base rate times ``Method.init_lr_factor``, as RepDistiller's
    ``helper/pretrain.py`` ``init`` keeps its rate fixed), through this same loop.

    ``model_name`` is the architecture being trained (teacher, assistant or student): its base rate is
    ``schedule.lr_for(model_name)``. A schedule with per-model rates needs it (a ValueError otherwise).

    ``checkpoint`` (:mod:`bench.checkpoint`) saves the run's state every ``checkpoint.every`` epochs and,
    when it holds a state of this stage, resumes from it (the batches, rates and random draws then
    continue as if the run had not stopped).

    ``log`` gets a row per epoch (:mod:`bench.epoch_log`: mean loss terms, rate, speed and, when it
    validates, the validation metrics, whose time is left out of ``wall_seconds``); it changes no number.

    ``precision`` (:mod:`bench.precision`): the forward passes under autocast at bf16 or fp16, the losses
    in fp32, fp16's loss scaled by a ``GradScaler``; ``fp32`` (the default) runs as before.

    Raises :class:`NonFiniteLossError` naming the step and the loss terms as soon
    as the summed loss is NaN or infinite; the student is left as it was then. A split smaller than
    one batch raises :class:`DataError` before any step (see :func:`steps_per_epoch`).
    """
    task = distiller.task
    device = device or torch.device("cpu")
    if schedule.lr_by_model and model_name is None:
        raise ValueError("train: the schedule has per-model learning rates (lr_by_model); pass model_name")
    per_epoch = steps_per_epoch(task, split, schedule.batch_size, desc, schedule.drop_last)
    method, init = distiller.method, stage == "init"
    epochs = method.hparams["init_epochs"] if init else schedule.epochs
    total = per_epoch * epochs
    lr = schedule.lr_for(model_name) if model_name is not None else schedule.lr
    if init:
        params = distiller.init_parameters()
        optimizer, _ = make_optimizer(params, schedule, total, per_epoch, lr * method.init_lr_factor)
        lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        # as RepDistiller's init(): the student is in training mode only where the stage trains it
        trained = {id(p) for p in params}
        distiller.student.train(any(id(p) in trained for p in distiller.student.parameters()))
    else:
        optimizer, lr_scheduler = make_optimizer(distiller.trainable_parameters(), schedule, total, per_epoch, lr)
        method.bind_optimizer(lambda peer_params: make_optimizer(peer_params, schedule, total, per_epoch, lr))
        distiller.student.train()
    distiller.stage, distiller.precision = stage, precision
    scaler = grad_scaler(precision, device)
    forward = distributed.wrap(distiller)  # DDP under torchrun (bench.distributed), else the distiller
    distributed.average_gradients_of(method.auxiliary_parameters())
    if distiller.extras is not None:
        distiller.extras.train()
    stats = TrainStats()
    start = time.perf_counter()
    bar = tqdm(total=total, desc=desc, disable=None if progress else True, leave=False, unit="step",
               dynamic_ncols=True)  # None: shown on a terminal only
    step, logging_seconds, first_epoch, earlier_seconds = 0, 0.0, 0, 0.0
    resumed = checkpoint.restore(stage, distiller, optimizer, lr_scheduler, generator, scaler) if checkpoint else None
    if resumed is not None:
        first_epoch, step, earlier_seconds, rows = resumed
        if log is not None:
            log.rows = [EpochRow(**row) for row in rows]
        bar.update(step)
    batches = task.pair_batches if method.same_class_pairs else task.train_batches
    for epoch in range(first_epoch, epochs):
        bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}", refresh=False)
        epoch_start, epoch_steps, samples, sums = time.perf_counter(), 0, 0, {}
        for batch in batches(split, schedule.batch_size, augmentation, generator, schedule.drop_last):
            terms = forward(batch.to(device))
            loss = sum(terms.values())
            step += 1
            if not torch.isfinite(loss):
                shown = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
                bar.close()
                raise NonFiniteLossError(f"non-finite loss at step {step} (epoch {epoch + 1}): {shown}")
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:  # fp16: an overflowing step is skipped and the scale lowered
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            lr_scheduler.step()
            method.after_step(step)
            bar.update(1)
            if log is not None:
                epoch_steps, samples = epoch_steps + 1, samples + len(batch.targets)
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value.detach()
        if log is not None:
            logging_seconds += log_epoch(log, distiller, stage, epoch, epochs, epoch_steps, samples, sums,
                                         optimizer, time.perf_counter() - epoch_start)
        if checkpoint is not None and checkpoint.due(epoch + 1, epochs) and distributed.world().is_main:
            saving = time.perf_counter()
            seconds = earlier_seconds + saving - start - logging_seconds
            checkpoint.save(stage, epoch + 1, step, seconds, distiller, optimizer, lr_scheduler, generator,
                            [dataclasses.asdict(row) for row in log.rows] if log is not None else [], scaler)
            logging_seconds += time.perf_counter() - saving
    bar.close()
    distiller.stage, distiller.precision = "main", FP32
    stats.steps = step
    stats.wall_seconds = earlier_seconds + time.perf_counter() - start - logging_seconds
    if step:
        stats.final_losses = {k: float(v.detach()) for k, v in terms.items()}
    return stats


def log_epoch(log: EpochLog, distiller: Distiller, stage: str, epoch: int, epochs: int, steps: int, samples: int,
              sums: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, seconds: float) -> float:
    """Hand ``log`` the epoch's row (validating if it asks); returns the seconds the validation took, which
    are not training time. The modes of the student and the extras are restored afterwards."""
    sums = distributed.all_reduce_mean(sums)  # under DDP: the ranks' mean, and every rank's samples
    samples *= distributed.world().size
    validation, validation_seconds = {}, 0.0
    if log.validate is not None:
        start = time.perf_counter()
        modes = [(m, m.training) for m in (distiller.student, distiller.extras) if m is not None]
        validation = log.validate()
        for module, mode in modes:
            module.train(mode)
        validation_seconds = time.perf_counter() - start
    log.add(EpochRow(stage=stage, epoch=epoch + 1, epochs=epochs, steps=steps, lr=optimizer.param_groups[0]["lr"],
                     seconds=seconds, samples_per_second=samples / seconds if seconds > 0 else 0.0,
                     losses={k: float(v) / max(steps, 1) for k, v in sums.items()}, validation=validation,
                     validation_seconds=validation_seconds))
    return validation_seconds


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (Linux/macOS), 0.0 if unknown."""
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):
        return 0.0
    return rss / 1024 if os.uname().sysname != "Darwin" else rss / 2**20

