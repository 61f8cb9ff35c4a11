"""LossInputs carries the batch's dataset indices (CRD's memory bank keys on them)."""

from __future__ import annotations

import torch

from bench.distill import Distiller
from bench.method import LossInputs, Method
from bench.registry import TASKS


class _Probe(Method):
    """Unregistered: records what the Distiller hands to ``losses``."""

    def __init__(self):
        super().__init__()
        self.seen: list[LossInputs] = []

    def losses(self, inputs, extras):
        self.seen.append(inputs)
        return dict(inputs.task_losses)


def test_indices_default_to_none():
    assert LossInputs({}, {}, None, {}).indices is None


def test_distiller_passes_the_batch_indices(tiny_protocol):
    task = TASKS.get(tiny_protocol.task)()
    split = task.load_splits(tiny_protocol.dataset)["train"]
    student = task.build_model(tiny_protocol.student, len(split.classes))
    probe = _Probe()
    distiller = Distiller(task, student, tiny_protocol.student, probe, [])
    batch = next(task.train_batches(split, 8, tiny_protocol.augmentation, torch.Generator().manual_seed(0)))
    distiller(batch)
    indices = probe.seen[-1].indices
    assert torch.equal(indices, batch.indices)
    # positions in the training split: the targets at those positions are the batch's targets
    assert torch.equal(split.targets[indices], probe.seen[-1].targets)
