"""The task contract: what the engine needs from a task, and nothing more.

A task owns its data (generated and real-format), its models' feature points,
its training loss, augmentation and metric. The engine and the methods talk to
models only through a task, never through one library's internals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from bench.distributed import shard
from bench.streaming import Loading, StreamingSplit, stream

if TYPE_CHECKING:
    from bench.protocol import Protocol

#: per-sample seeds of random augmentations are drawn from 0..SEED_RANGE-1
SEED_RANGE = 2**62


@dataclass
class Split:
    """One split of a dataset held in memory: inputs, targets and class names.

    ``inputs`` and ``targets`` are tensors for fixed-size samples (classification)
    or lists (one entry per sample, e.g. detection boxes); ``extra`` holds what a
    task's metric needs besides (e.g. the COCO ground-truth dict).
    """

    inputs: torch.Tensor | list
    targets: torch.Tensor | list
    classes: tuple[str, ...]
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class Batch:
    """A training or evaluation batch.

    ``indices`` are positions in the split and ``variants`` the augmentation
    variant of each sample (e.g. 0 = as is, 1 = flipped); together they key the
    teacher-output cache.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor
    variants: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        """The batch with inputs and targets on ``device`` (indices stay on the CPU for cache look-ups)."""
        if device.type == "cpu":
            return self
        return Batch(to_device(self.inputs, device), to_device(self.targets, device), self.indices, self.variants)


def to_device(value: Any, device: torch.device) -> Any:
    """Tensors, and tensors inside lists and dicts, moved to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, list):
        return [to_device(v, device) for v in value]
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


class Task:
    """Base class of a task; subclasses register themselves in ``TASKS``."""

    name: str = ""
    #: metric names the task's :meth:`evaluate` returns.
    metrics: tuple[str, ...] = ()
    #: augmentation name -> number of distinct variants (finite, so teacher outputs can be cached), or
    #: ``None`` for a random augmentation (random crops: no finite set, the teacher runs live).
    augmentations: dict[str, int | None] = {"none": 1}
    #: how streaming splits are read (run options, set by :meth:`configure`)
    loading: Loading = Loading(workers=0)

    def configure(self, protocol: Protocol, loading: Loading | None = None) -> Task:
        """Set the task up for ``protocol``'s runs (and streaming splits' ``loading``); returns the task.

        A task whose data handling depends on the protocol (the classification task's normalisation and
        evaluation transform) reads it here; :func:`make_task` is how the engine builds a task.
        """
        if loading is not None:
            self.loading = loading
        return self

    def preprocessing(self) -> dict[str, Any]:
        """What the configured protocol changes in the models' inputs beyond the data and the augmentation
        (e.g. its normalisation), for cache keys; empty when nothing (the key then stays as it was)."""
        return {}

    def feature_points(self, model_name: str) -> dict[str, str]:
        """Feature-point name -> module path in the model ``model_name``."""
        return {}

    def load_splits(self, dataset: dict[str, Any], root: str | None = None) -> dict[str, Split]:
        """``{"train", "val", "test"}`` from the registered dataset named in the protocol's spec.

        ``root`` (the user's ``--data-root``) is passed to datasets read from disk.
        """
        from bench.errors import ConfigError
        from bench.registry import DATASETS

        params = dict(dataset)
        name = params.pop("name", None)
        if name is None:
            raise ConfigError("dataset: missing key 'name'")
        loader = DATASETS.get(name)
        if root is not None:
            params["root"] = root
        try:
            return loader(**params)
        except TypeError as exc:
            raise ConfigError(f"dataset {name!r}: {exc}") from None

    def num_augment_variants(self, augmentation: str) -> int | None:
        """How many distinct augmentations one sample can get; ``None`` for a random augmentation, whose
        variants are per-sample seeds (no finite set: no teacher-output cache)."""
        from bench.errors import ConfigError

        if augmentation not in self.augmentations:
            raise ConfigError(f"unknown augmentation {augmentation!r}; valid: {', '.join(self.augmentations)}")
        return self.augmentations[augmentation]

    def augment(self, inputs: torch.Tensor, variants: torch.Tensor, augmentation: str) -> torch.Tensor:
        """Apply the augmentation ``variants`` (one per sample) to raw inputs (or label maps).

        ``"none"`` leaves them; ``"hflip"`` mirrors the last dimension of the samples whose
        variant is 1. Tasks with geometric targets (boxes, keypoints) flip those in ``collate``.
        """
        if augmentation == "none":
            return inputs
        if augmentation != "hflip":
            raise NotImplementedError(f"task {self.name!r} has no augmentation {augmentation!r}")
        flip = variants.bool().view(-1, *([1] * (inputs.dim() - 1)))
        return torch.where(flip, inputs.flip(-1), inputs)

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        """Turn stored inputs (e.g. uint8 images) into the model's float input."""
        raise NotImplementedError

    def build_model(self, name: str, num_classes: int) -> nn.Module:
        raise NotImplementedError

    def task_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """The supervised training loss terms of the task."""
        raise NotImplementedError

    def forward_train(self, model: nn.Module, batch: Batch) -> tuple[Any, dict[str, torch.Tensor]]:
        """A training forward pass: the model's output and the task's loss terms.

        Models whose training losses come from the model itself (torchvision
        detectors) override this; feature points are recorded around it.
        """
        output = model(batch.inputs)
        return output, self.task_losses(output, batch.targets)

    def forward_features(self, model: nn.Module, batch: Batch) -> Any:
        """An inference forward pass for reading features (the teacher's, or probe shapes)."""
        return model(batch.inputs)

    def collate(self, split: Split | StreamingSplit, indices: torch.Tensor, variants: torch.Tensor,
                augmentation: str) -> Batch:
        """The batch of samples ``indices`` with augmentation ``variants`` applied (a streaming split's
        samples are read here, in this process: :meth:`train_batches` reads them in loader workers)."""
        if isinstance(split, StreamingSplit):
            keys = zip(indices.tolist(), variants.tolist(), strict=True)
            samples = [self.load_sample(split, i, v, augmentation) for i, v in keys]
            return Batch(torch.stack([x for x, _ in samples]), torch.stack([y for _, y in samples]), indices, variants)
        inputs = self.prepare(self.augment(split.inputs[indices], variants, augmentation))
        return Batch(inputs, split.targets[indices], indices, variants)

    def load_sample(self, split: StreamingSplit, index: int, variant: int, augmentation: str
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``index`` of a streaming split, read, augmented (``variant``) and prepared, with its target;
        what a loader worker runs."""
        inputs = self.prepare(self.augment(split.read(index)[None], torch.tensor([variant]), augmentation))
        return inputs[0], split.targets[index]

    def evaluate(self, model: nn.Module, split: Split, batch_size: int) -> dict[str, float]:
        raise NotImplementedError

    def module_path(self, model_name: str, point: str) -> str:
        """Module path of feature point ``point`` in model ``model_name`` ("" = the model output)."""
        from bench.errors import ConfigError

        if point == "logits":
            return ""
        points = self.feature_points(model_name)
        if point not in points:
            raise ConfigError(
                f"task {self.name!r}: model {model_name!r} has no feature point {point!r}; "
                f"known: {', '.join(['logits', *sorted(points)])}"
            )
        return points[point]

    def train_batches(
        self, split: Split | StreamingSplit, batch_size: int, augmentation: str, generator: torch.Generator,
        drop_last: bool = True,
    ) -> Iterator[Batch]:
        """One epoch of shuffled, augmented training batches; the last partial batch is dropped unless
        ``drop_last`` is False (:attr:`~bench.protocol.Schedule.drop_last`).

        The order and each sample's variant come from ``generator``: a variant index for a finite
        augmentation, a seed (0..:data:`SEED_RANGE`-1) for a random one. A streaming split is read by
        the loader's workers (:func:`bench.streaming.stream`) from the same order and variants, so the
        batches do not depend on the worker count.
        """
        order = torch.randperm(len(split), generator=generator)
        n_variants = self.num_augment_variants(augmentation)
        variants = torch.randint(SEED_RANGE if n_variants is None else n_variants, (len(split),), generator=generator)
        starts = range(0, self.batches_per_epoch(split, batch_size, drop_last) * batch_size, batch_size)
        if isinstance(split, StreamingSplit):  # under DDP each rank reads its share of each batch (shard)
            keys = ([(int(i), int(variants[i])) for i in shard(order[start : start + batch_size])] for start in starts)
            load = partial(self.load_sample, split, augmentation=augmentation)
            for inputs, targets, indices, batch_variants in stream(load, keys, self.loading):
                yield Batch(inputs, targets, indices, batch_variants)
            return
        for start in starts:
            idx = shard(order[start : start + batch_size])
            yield self.collate(split, idx, variants[idx], augmentation)

    def pair_batches(
        self, split: Split | StreamingSplit, batch_size: int, augmentation: str, generator: torch.Generator,
        drop_last: bool = True,
    ) -> Iterator[Batch]:
        """One epoch of batches of ``2 * batch_size`` samples: a shuffled batch of ``batch_size`` as
        :meth:`train_batches` makes it, then one partner per sample drawn uniformly from the samples of
        its class (itself included), in the same order: CS-KD's ``PairBatchSampler`` (alinlab/cs-kd
        ``datasets.py``), for methods with ``Method.same_class_pairs``. Every slot gets its own
        augmentation variant. Needs one class label per sample (``split.targets``, a tensor)."""
        targets = torch.as_tensor(split.targets)
        order = torch.randperm(len(split), generator=generator)
        n_variants = self.num_augment_variants(augmentation)
        variants = torch.randint(SEED_RANGE if n_variants is None else n_variants, (2, len(split)),
                                 generator=generator)
        by_class = torch.argsort(targets, stable=True)  # sample positions grouped by class
        counts = torch.bincount(targets)
        first = torch.cumsum(counts, 0) - counts  # where each class starts in by_class
        starts = range(0, self.batches_per_epoch(split, batch_size, drop_last) * batch_size, batch_size)
        keys = []
        for start in starts:
            idx = order[start : start + batch_size]
            y = targets[idx]
            draw = (torch.rand(len(idx), generator=generator) * counts[y]).long().clamp_max(counts[y] - 1)
            partners = by_class[first[y] + draw]
            idx, partners = shard(idx), shard(partners)  # the draws are the whole batch's, as with one process
            keys.append((torch.cat([idx, partners]), torch.cat([variants[0, idx], variants[1, idx]])))
        if isinstance(split, StreamingSplit):
            load = partial(self.load_sample, split, augmentation=augmentation)
            pairs = ([(int(i), int(v)) for i, v in zip(*key, strict=True)] for key in keys)
            for inputs, batch_targets, indices, batch_variants in stream(load, pairs, self.loading):
                yield Batch(inputs, batch_targets, indices, batch_variants)
            return
        for idx, batch_variants in keys:
            yield self.collate(split, idx, batch_variants, augmentation)

    def batches_per_epoch(self, split: Split | StreamingSplit, batch_size: int, drop_last: bool = True) -> int:
        """Batches in one epoch: whole batches only, or with the last partial one when not ``drop_last``."""
        return len(split) // batch_size if drop_last else -(-len(split) // batch_size)


def make_task(protocol: Protocol, loading: Loading | None = None) -> Task:
    """The task of ``protocol``, configured for it (:meth:`Task.configure`): how the engine builds a task."""
    from bench.registry import TASKS

    return TASKS.get(protocol.task)().configure(protocol, loading)
