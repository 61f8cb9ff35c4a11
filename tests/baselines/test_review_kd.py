"""ReviewKD against mdistiller's ``mdistiller/distillers/ReviewKD.py`` on fixed tensors.

The golden numbers were computed by running ``ReviewKD.forward_train`` of megvii-research/mdistiller
at commit a08d46f10d6102bd6e3f258ca5ac880b020ea259 with stub student/teacher modules returning the
features of this file (student stage maps 4x8x8, 6x4x4, 8x2x2 and an 8-d pooled vector; teacher
5x16x16, 7x4x4, 9x2x2 and 10-d; cfg SHAPES [1, 2, 4, 8], OUT_SHAPES [1, 2, 4, 16], IN_CHANNELS
[4, 6, 8, 8], OUT_CHANNELS [5, 7, 9, 10], REVIEWKD_WEIGHT 5, WARMUP_EPOCHS 20), every ABF parameter
set by :func:`fill` (shallowest level first), in training mode (BatchNorm on batch statistics).
"""

import pytest
import torch

from baselines.review_kd import ReviewKD, as_map
from bench.method import DataInfo, LossInputs

GOLDEN_EPOCH_3 = 1.4143242835998535  # 5 * min(3 / 20, 1) * HCL
GOLDEN_EPOCH_25 = 9.428828239440918  # 5 * HCL
GOLDEN_EXTRA_PARAMS = 2668
B = 2


def fixed(shape, a, b=0.0, scale=1.0):
    n = 1
    for d in shape:
        n *= d
    return (torch.sin(torch.arange(n, dtype=torch.float32) * a + b) * scale).view(*shape)


def fill(module, a):
    with torch.no_grad():
        for k, (_, p) in enumerate(module.named_parameters()):
            p.copy_(fixed(p.shape, a, float(k), 0.3))


def features():
    student = {"stage1": fixed((B, 4, 8, 8), 0.31), "stage2": fixed((B, 6, 4, 4), 0.17, 1.0),
               "stage3": fixed((B, 8, 2, 2), 0.23, 2.0).relu(), "embedding": fixed((B, 8), 0.41, 0.5)}
    # the teacher's stages are read before their last ReLU (mdistiller's ``preact_feats``)
    teacher = {"stage1.preact": fixed((B, 5, 16, 16), 0.13, 0.3), "stage2.preact": fixed((B, 7, 4, 4), 0.29, 0.7),
               "stage3.preact": fixed((B, 9, 2, 2), 0.37, 1.1), "embedding": fixed((B, 10), 0.19, 0.2)}
    return student, teacher


def setup(epochs=240):
    student, teacher = features()
    method = ReviewKD()
    method.bind_data(DataInfo(num_samples=10, num_classes=3, steps_per_epoch=1, epochs=epochs))
    extras = method.build_extras({k: v.shape for k, v in student.items()}, {k: v.shape for k, v in teacher.items()})
    for i, abf in enumerate(extras.abfs):
        fill(abf, 0.11 * (i + 1))
    extras.train()
    return method, extras, LossInputs(student, teacher, None, {"ce": torch.tensor(0.25)})


def test_review_loss_matches_mdistiller():
    method, extras, inputs = setup()
    assert sum(p.numel() for p in extras.parameters()) == GOLDEN_EXTRA_PARAMS
    method.after_step(2)  # the coming step is epoch 3's
    terms = method.losses(inputs, extras)
    assert terms["review"].item() == pytest.approx(GOLDEN_EPOCH_3, rel=1e-5)
    assert terms["ce"].item() == 0.25
    method.after_step(24)
    assert method.losses(inputs, extras)["review"].item() == pytest.approx(GOLDEN_EPOCH_25, rel=1e-5)


def test_outputs_take_the_teachers_shapes_and_the_stage_count_is_a_hyperparameter():
    method, extras, inputs = setup()
    fused = extras([as_map(inputs.student[p]) for p in method.student_features])
    assert [tuple(f.shape) for f in fused] == [(B, 5, 16, 16), (B, 7, 4, 4), (B, 9, 2, 2), (B, 10, 1, 1)]
    assert extras.abfs[-1].att_conv is None and all(a.att_conv is not None for a in extras.abfs[:-1])
    assert ReviewKD(stages=4).student_features == ("stage1", "stage2", "stage3", "stage4", "embedding")
    assert ReviewKD(stages=2).teacher_features == ("stage1.preact", "stage2.preact", "embedding")


def test_warm_up_scales_with_the_protocol():
    method, extras, inputs = setup(epochs=24)  # W = 2 epochs
    assert method.losses(inputs, extras)["review"].item() == pytest.approx(GOLDEN_EPOCH_25 / 2, rel=1e-5)
