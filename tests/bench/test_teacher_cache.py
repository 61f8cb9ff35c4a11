"""The teacher-output cache gives the same losses as running the teacher live."""

import torch

from bench.distill import Distiller
from bench.runner import RunOptions, Workspace, build_method
from bench.teacher_cache import TeacherOutputCache


def test_cached_and_live_losses_agree(tiny_protocol):
    ws = Workspace(tiny_protocol, RunOptions())
    teacher = ws.teacher()
    cache = ws.teacher_output_cache()
    n_variants = ws.task.num_augment_variants(tiny_protocol.augmentation)
    assert cache.logits.shape == (len(ws.splits["train"]), n_variants, 20)
    student = ws.task.build_model(tiny_protocol.student, 20)
    method = build_method(tiny_protocol, "kd")
    live = Distiller(ws.task, student, tiny_protocol.student, method, teacher.model, tiny_protocol.teacher.model)
    cached = Distiller(ws.task, student, tiny_protocol.student, method, teacher.model,
                       tiny_protocol.teacher.model, teacher_cache=cache)
    generator = torch.Generator().manual_seed(3)
    student.eval()  # same student forward in both (no batch-norm statistics update)
    for batch in ws.task.train_batches(ws.splits["train"], 50, tiny_protocol.augmentation, generator):
        a, b = live(batch), cached(batch)
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    assert live.teacher_forwards > 0 and cached.teacher_forwards == 0


def test_cache_is_reused_from_disk(tiny_protocol):
    ws = Workspace(tiny_protocol, RunOptions())
    ws.teacher_output_cache()
    again = Workspace(tiny_protocol, RunOptions())
    again.teacher_output_cache()
    assert again.cache_build_forwards == 0


def test_only_logits_are_cacheable():
    assert TeacherOutputCache.supports(("logits",))
    assert not TeacherOutputCache.supports(("logits", "backbone.out"))
    assert not TeacherOutputCache.supports(())
