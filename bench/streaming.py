"""Streaming splits: real datasets read sample by sample through a ``torch.utils.data.DataLoader``.

A :class:`~bench.task.Split` holds a whole split in memory as one tensor, which
suits the generated datasets and CIFAR (150 MB) but not ImageNet (1.28 M JPEGs,
about 190 GB as decoded 224x224 tensors). A :class:`StreamingSplit` holds only
the file list and the labels; samples are decoded, augmented and normalised in
the loader's worker processes (:func:`stream`), and batches are pinned in
memory when the run's device is a GPU, so that the copy overlaps the step.

Reproducibility does not depend on the workers: the batch order and every
sample's augmentation variant (for random augmentations, a seed from which the
sample's crop and flip are drawn) are decided in the main process from the
run's generator before the loader sees them, so 0, 1 or 8 workers give the same
batches bit for bit (``tests/bench/test_streaming.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset

from bench.errors import ConfigError, DataError


def default_workers() -> int:
    """Loader worker processes by default: one core is left to the training loop, at most 8 are used
    (2 cores: 1 worker)."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class Loading:
    """How streaming splits are read: run options that never change a number (nor a record's identity)."""

    #: worker processes of the DataLoader; 0 reads in the main process
    workers: int = field(default_factory=default_workers)
    #: pin batches in page-locked memory (set when the device is CUDA)
    pin_memory: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"--workers {self.workers!r}: must be a whole number >= 0 (0 reads in the main process)")

    @classmethod
    def for_device(cls, device: str, workers: int | None = None) -> Loading:
        """The loading of a run on ``device`` (pinned memory on CUDA) with ``workers`` (default:
        :func:`default_workers`)."""
        pin = torch.device(device).type == "cuda"
        return cls(pin_memory=pin) if workers is None else cls(workers=workers, pin_memory=pin)


@dataclass
class StreamingSplit:
    """A split read lazily: one file per sample, its label, and the function that reads a file.

    ``reader(path)`` returns the sample as a uint8 tensor (C, H, W); it must be picklable (a module-level
    function or a ``functools.partial`` of one) so that loader workers can be spawned on any platform,
    and it raises :class:`~bench.errors.DataError` naming the file it cannot read.
    """

    files: tuple[str, ...]
    targets: torch.Tensor
    classes: tuple[str, ...]
    reader: Callable[[str], torch.Tensor]
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> torch.Tensor:
        """Sample ``index`` as the reader returns it (not augmented, not normalised)."""
        return self.reader(self.files[index])

    def subset(self, indices: Sequence[int] | torch.Tensor, source: str) -> StreamingSplit:
        """The samples at ``indices``, in that order, as a split of its own named ``source``."""
        picked = [int(i) for i in indices]
        return StreamingSplit(tuple(self.files[i] for i in picked), self.targets[picked], self.classes, self.reader,
                              source, dict(self.extra))


@dataclass
class _Failure:
    """A sample a worker could not read: the DataError's message, raised again in the main process (a
    worker's exception would otherwise arrive wrapped in the worker's traceback)."""

    message: str


class _Samples(Dataset):
    """Calls ``load(index, variant) -> (input, target)`` for each key a batch sampler yields."""

    def __init__(self, load: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]):
        self.load = load

    def __getitem__(self, key: tuple[int, int]):
        index, variant = key
        try:
            inputs, target = self.load(index, variant)
        except DataError as exc:
            return _Failure(str(exc))
        return inputs, target, index, variant


def _collate(samples: list) -> tuple[torch.Tensor, ...] | _Failure:
    failed = next((s for s in samples if isinstance(s, _Failure)), None)
    if failed is not None:
        return failed
    inputs, targets, indices, variants = zip(*samples, strict=True)
    return (torch.stack(inputs), torch.stack([torch.as_tensor(t) for t in targets]),
            torch.tensor(indices, dtype=torch.long), torch.tensor(variants, dtype=torch.long))


def stream(load: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]], batches: Iterable[list[tuple[int, int]]],
           loading: Loading) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(inputs, targets, indices, variants)`` of each batch of ``(index, variant)`` keys, in order.

    ``load`` runs in ``loading.workers`` worker processes (the main process when 0); the batches come
    back in the order given, pinned when ``loading.pin_memory``. A sample that cannot be read raises
    :class:`~bench.errors.DataError` with the reader's message (it names the file).
    """
    loader = DataLoader(_Samples(load), batch_sampler=batches, num_workers=loading.workers,
                        pin_memory=loading.pin_memory, collate_fn=_collate)
    for batch in loader:
        if isinstance(batch, _Failure):
            raise DataError(batch.message)
        yield batch
