"""The teacher-output cache gives the same losses as running the teacher live, for every task's methods."""

import dataclasses

import pytest
import torch

from bench.distill import Distiller, TeacherInput
from bench.protocol import get_protocol
from bench.runner import RunOptions, Workspace, build_method

CASES = [("classification-smoke", "kd"), ("detection-smoke", "fgfi"), ("detection-smoke", "chen2017")]


def tiny(protocol_name):
    protocol = get_protocol(protocol_name)
    return dataclasses.replace(protocol, schedule=dataclasses.replace(protocol.schedule, epochs=1), seeds=(0,))


@pytest.mark.parametrize("protocol_name,method_name", CASES)
def test_cached_and_live_losses_agree(protocol_name, method_name):
    protocol = tiny(protocol_name)
    ws = Workspace(protocol, RunOptions())
    teacher = ws.teacher()
    method = build_method(protocol, method_name)
    cache = ws.teacher_output_cache(method.teacher_features)
    classes = len(ws.splits["train"].classes)
    student = ws.task.build_model(protocol.student, classes)
    live = Distiller(ws.task, student, protocol.student, method, [TeacherInput(teacher.model, teacher.model_name)])
    cached = Distiller(ws.task, student, protocol.student, method,
                       [TeacherInput(teacher.model, teacher.model_name, cache)])
    generator = torch.Generator().manual_seed(3)
    batches = ws.task.train_batches(ws.splits["train"], 16, protocol.augmentation, generator)
    first = next(batches)
    live.build_extras(first)
    cached.extras = live.extras  # the same adapters in both
    for batch in [first, *list(batches)[:2]]:
        torch.manual_seed(0)
        a = live(batch)
        torch.manual_seed(0)
        b = cached(batch)
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    assert live.teacher_forwards > 0 and cached.teacher_forwards == 0


def test_cache_is_reused_from_disk():
    protocol = tiny("classification-smoke")
    Workspace(protocol, RunOptions()).teacher_output_cache(("logits",))
    again = Workspace(protocol, RunOptions())
    again.teacher_output_cache(("logits",))
    assert again.cache_build_forwards == 0


def test_cache_holds_every_variant_of_every_sample():
    protocol = tiny("detection-smoke")
    ws = Workspace(protocol, RunOptions())
    cache = ws.teacher_output_cache(("neck.p2", "head.out"))
    n = len(ws.splits["train"])
    assert cache.features["neck.p2"].shape[:2] == (n, 2)
    assert cache.features["head.out"]["cls_logits"].shape[:2] == (n, 2)
    looked_up = cache.lookup(torch.tensor([3, 3]), torch.tensor([0, 1]))
    assert not torch.equal(looked_up["neck.p2"][0], looked_up["neck.p2"][1])  # flipped differs
