"""Segmentation distillation losses against hand computations on tiny tensors."""

import math

import pytest
import torch
from torch import nn

from tasks.segmentation.losses import (
    channel_wise_kd,
    gradient_penalty,
    intra_kd,
    node_affinity,
    pairwise_kd,
    pixelwise_kd,
    region_affinity,
)

LN2, LN3 = math.log(2.0), math.log(3.0)
R2 = 1 / math.sqrt(2.0)


def cos(u, v):
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def fmap(pixels, height, width):
    """(1, C, H, W) double tensor from a row-major list of per-pixel channel vectors."""
    t = torch.tensor(pixels, dtype=torch.float64)  # (H*W, C)
    return t.T.reshape(1, -1, height, width).contiguous()


# --------------------------------------------------------------------------- pixel-wise KD

# B=1, C=2, H=1, W=2.
# pixel 1: teacher logits (0, 0) -> q_t = (1/2, 1/2); student (0, ln 3) -> q_s = (1/4, 3/4)
#   KL = 1/2 ln(1/2 / 1/4) + 1/2 ln(1/2 / 3/4) = 1/2 ln 2 + 1/2 ln(2/3)
# pixel 2: teacher (ln 3, 0) -> q_t = (3/4, 1/4); student (0, 0) -> q_s = (1/2, 1/2)
#   KL = 3/4 ln(3/2) + 1/4 ln(1/2)
KL1 = 0.5 * LN2 + 0.5 * math.log(2 / 3)
KL2 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
PIXEL_KD = (KL1 + KL2) / 2  # sum over the 2 pixels / (H*W)
STUDENT_LOGITS = [[0.0, LN3], [0.0, 0.0]]  # per pixel (class 0, class 1)
TEACHER_LOGITS = [[0.0, 0.0], [LN3, 0.0]]


def test_pixelwise_identical_logits_give_zero():
    z = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    assert pixelwise_kd(z, z.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert pixelwise_kd(z, z.clone(), temperature=3.0).item() == pytest.approx(0.0, abs=1e-12)


def test_pixelwise_worked_two_pixel_example():
    s, t = fmap(STUDENT_LOGITS, 1, 2), fmap(TEACHER_LOGITS, 1, 2)
    assert pixelwise_kd(s, t).item() == pytest.approx(PIXEL_KD, rel=1e-12)
    # equals SKD's cross-entropy form minus the teacher entropy (a student-independent constant)
    q_t = [[0.5, 0.5], [0.75, 0.25]]
    q_s = [[0.25, 0.75], [0.5, 0.5]]
    ce = sum(-q_t[i][c] * math.log(q_s[i][c]) for i in range(2) for c in range(2)) / 2
    entropy = sum(-q_t[i][c] * math.log(q_t[i][c]) for i in range(2) for c in range(2)) / 2
    assert pixelwise_kd(s, t).item() == pytest.approx(ce - entropy, rel=1e-12)
    # temperature divides the logits: doubling both logits at T=2 gives the same number
    assert pixelwise_kd(2 * s, 2 * t, temperature=2.0).item() == pytest.approx(PIXEL_KD, rel=1e-12)
    # batch mean: a second, perfectly matched image halves the loss
    s2, t2 = torch.cat([s, t]), torch.cat([t, t])
    assert pixelwise_kd(s2, t2).item() == pytest.approx(PIXEL_KD / 2, rel=1e-12)


def test_pixelwise_rejects_different_shapes():
    with pytest.raises(ValueError):
        pixelwise_kd(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 4, 4))


# --------------------------------------------------------------------------- node affinity / pair-wise

# 2x2 map, 2 channels, pool_scale 0.5 -> kernel ceil(0.5*2) = 1: the 4 nodes are the pixels (row-major)
# n0 = (1, 0), n1 = (0, 1), n2 = (1, 1), n3 = (3, -4)
PIXELS_T = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, -4.0]]
# cosines: n0.n1 = 0, n0.n2 = 1/sqrt2, n0.n3 = 3/5, n1.n2 = 1/sqrt2, n1.n3 = -4/5, n2.n3 = (3-4)/(5 sqrt2)
A_T = [[1.0, 0.0, R2, 0.6],
       [0.0, 1.0, R2, -0.8],
       [R2, R2, 1.0, -R2 / 5],
       [0.6, -0.8, -R2 / 5, 1.0]]


def test_node_affinity_pixels_as_nodes():
    a = node_affinity(fmap(PIXELS_T, 2, 2), pool_scale=0.5)
    assert a.shape == (1, 4, 4)
    assert a[0].tolist() == [pytest.approx(row, abs=1e-12) for row in A_T]


def test_node_affinity_max_pools_with_ceil_mode():
    # 3x3 map, pool_scale 0.5 -> kernel = stride = ceil(1.5) = 2, ceil_mode -> a 2x2 node grid whose
    # border windows are partial.
    ch0 = [[1, 2, 0],
           [0, 3, 1],
           [4, 0, 2]]
    ch1 = [[0, 1, 5],
           [2, 0, 0],
           [1, 3, 0]]
    x = torch.tensor([[ch0, ch1]], dtype=torch.float64)
    # windows: rows{0,1}xcols{0,1} -> (3, 2); rows{0,1}xcol{2} -> (1, 5); row{2}xcols{0,1} -> (4, 3);
    # row{2}xcol{2} -> (2, 0)
    nodes = [(3, 2), (1, 5), (4, 3), (2, 0)]
    expected = [[cos(u, v) for v in nodes] for u in nodes]
    a = node_affinity(x, pool_scale=0.5)
    assert a.shape == (1, 4, 4)
    assert a[0].tolist() == [pytest.approx(row, abs=1e-12) for row in expected]


def test_pairwise_kd_with_different_channel_counts():
    teacher = fmap(PIXELS_T, 2, 2)  # 2 channels, affinity A_T
    student = fmap([[1.0, 0.0, 0.0]] * 4, 2, 2)  # 3 channels, all nodes equal -> affinity all ones
    expected = sum((A_T[i][j] - 1.0) ** 2 for i in range(4) for j in range(4)) / 16
    assert pairwise_kd(student, teacher).item() == pytest.approx(expected, rel=1e-12)
    # padding the teacher's nodes with a zero third channel keeps every cosine -> loss 0
    padded = fmap([p + [0.0] for p in PIXELS_T], 2, 2)
    assert pairwise_kd(padded, teacher).item() == pytest.approx(0.0, abs=1e-12)
    # batch mean over images
    both = pairwise_kd(torch.cat([student, padded]), torch.cat([teacher, teacher]))
    assert both.item() == pytest.approx(expected / 2, rel=1e-12)


# --------------------------------------------------------------------------- CWD

def test_cwd_worked_single_channel_example():
    # one channel over 2 locations, tau = 1: phi_t = softmax(0, 0) = (1/2, 1/2),
    # phi_s = softmax(0, ln 3) = (1/4, 3/4); KL = 1/2 ln 2 + 1/2 ln(2/3); tau^2/(B*C) = 1
    s = torch.tensor([[[[0.0, LN3]]]], dtype=torch.float64)
    t = torch.tensor([[[[0.0, 0.0]]]], dtype=torch.float64)
    assert channel_wise_kd(s, t, tau=1.0).item() == pytest.approx(KL1, rel=1e-12)
    # tau = 4 on logits scaled by 4: same distributions, times tau^2 = 16
    assert channel_wise_kd(4 * s, 4 * t, tau=4.0).item() == pytest.approx(16 * KL1, rel=1e-12)


def test_cwd_against_python_loop_over_channels():
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 2, 3, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 2, 3, generator=gen, dtype=torch.float64)
    tau = 4.0

    def spatial_softmax(values):
        exps = [math.exp(v / tau) for v in values]
        return [e / sum(exps) for e in exps]

    total = 0.0
    for b in range(2):
        for c in range(3):
            phi_s = spatial_softmax(s[b, c].flatten().tolist())
            phi_t = spatial_softmax(t[b, c].flatten().tolist())
            total += sum(pt * math.log(pt / ps) for pt, ps in zip(phi_t, phi_s, strict=True))
    expected = tau**2 / (2 * 3) * total
    assert channel_wise_kd(s, t, tau=tau).item() == pytest.approx(expected, rel=1e-10)
    assert channel_wise_kd(t, t.clone(), tau=tau).item() == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- gradient penalty

def linear_discriminator(weight):
    d = nn.Linear(len(weight), 1, bias=True).double()
    with torch.no_grad():
        d.weight.copy_(torch.tensor([weight], dtype=torch.float64))
        d.bias.fill_(0.7)
    return d


class Energy(nn.Module):
    """D(x) = 1/2 ||x||^2 per sample: its input gradient is x itself."""

    def forward(self, x):
        return 0.5 * (x**2).flatten(1).sum(dim=1)


class PatchIdentity(nn.Module):
    """D(x) = x for x of shape (B, 1, 2, 2): a 2x2 patch map of scores per sample."""

    def forward(self, x):
        return x


def test_gradient_penalty_takes_the_patch_mean_as_the_critic():
    # the losses use E[D] = the mean of the 4 scores: d mean / dx = 1/4 per entry, norm 1/2, GP = (1/2 - 1)^2.
    # (the sum of the 4 scores would give a norm of 2 and GP = 1: a different critic from the losses')
    real = torch.randn(3, 1, 2, 2, dtype=torch.float64)
    assert gradient_penalty(PatchIdentity(), real, torch.zeros_like(real)).item() == pytest.approx(0.25, rel=1e-12)


def test_gradient_penalty_linear_discriminator_is_exact():
    # D(x) = w.x + b: the gradient is w at every x_hat, so GP = (||w|| - 1)^2 = (3 - 1)^2 = 4
    d = linear_discriminator([1.0, 2.0, 2.0])
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    fake = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    gp = gradient_penalty(d, real, fake, generator=gen)
    assert gp.item() == pytest.approx(4.0, rel=1e-12)
    # unit-norm w -> 0
    assert gradient_penalty(linear_discriminator([0.6, 0.8]), real[:, :2], fake[:, :2]).item() == pytest.approx(
        0.0, abs=1e-12)
    # create_graph: GP back-propagates into D; d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = (4/3)(1, 2, 2)
    gp.backward()
    assert d.weight.grad[0].tolist() == pytest.approx([4 / 3, 8 / 3, 8 / 3], rel=1e-12)


def test_gradient_penalty_per_sample_norms_on_image_shaped_inputs():
    # D(x) = 1/2 sum x^2 -> grad = x_hat; real == fake makes x_hat = real whatever eps is.
    # sample norms: ||(3, 4, 0, 0)|| = 5 -> 16; ||(0.6, 0, 0.8, 0)|| = 1 -> 0; ||(0, 0, 0, 2)|| = 2 -> 1
    # GP = (16 + 0 + 1) / 3
    real = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.6, 0.0, 0.8, 0.0], [0.0, 0.0, 0.0, 2.0]],
                        dtype=torch.float64).reshape(3, 1, 2, 2)
    assert gradient_penalty(Energy(), real, real.clone()).item() == pytest.approx(17 / 3, rel=1e-12)
    # with fake = 0, x_hat = eps * real: one eps per sample, reproducible from the generator
    fake = torch.zeros_like(real)
    first = gradient_penalty(Energy(), real, fake, generator=torch.Generator().manual_seed(3))
    again = gradient_penalty(Energy(), real, fake, generator=torch.Generator().manual_seed(3))
    assert first.item() == again.item()
    # each sample's eps in [0, 1]: (eps * norm - 1)^2 lies between 0 and max(1, (norm - 1)^2)
    assert 0.0 <= first.item() <= (16 + 1 + 1) / 3


# --------------------------------------------------------------------------- IntRA-KD

# 2x2 map, 2 channels; labels [[0, 0], [1, 255]]
# class 0: pixels (1, 0), (1, 2) -> mean (1, 1); class 1: pixel (0, 3) -> mean (0, 3); (100, -100) ignored
# C_01 = cos((1, 1), (0, 3)) = 3 / (sqrt2 * 3) = 1/sqrt2
REGION_PIXELS_T = [[1.0, 0.0], [1.0, 2.0], [0.0, 3.0], [100.0, -100.0]]
LABELS = [[0, 0], [1, 255]]
C_T = [[1.0, R2], [R2, 1.0]]


def test_region_affinity_worked_two_region_example():
    feats = fmap(REGION_PIXELS_T, 2, 2)
    (aff,) = region_affinity(feats, torch.tensor([LABELS]), num_classes=3)
    assert aff.tolist() == [pytest.approx(row, abs=1e-12) for row in C_T]
    # a label outside [0, num_classes) is not a region: 7 replaces 255 -> same graph
    (aff,) = region_affinity(feats, torch.tensor([[[0, 0], [1, 7]]]), num_classes=3)
    assert aff.tolist() == [pytest.approx(row, abs=1e-12) for row in C_T]
    # one region -> 1x1, no valid label -> 0x0
    one, none = region_affinity(torch.cat([feats, feats]), torch.tensor([[[1, 1], [1, 1]], [[255] * 2] * 2]), 3)
    assert one.tolist() == [[pytest.approx(1.0)]] and none.shape == (0, 0)


def test_region_affinity_resizes_labels_by_nearest():
    # 4x4 labels -> 2x2 features: torch 'nearest' reads source rows/cols 0 and 2 (floor(dst * 2)),
    # so each 2x2 block contributes its top-left label; the 2 at (1, 1) is never read.
    labels = torch.tensor([[[0, 0, 0, 0],
                            [0, 2, 0, 0],
                            [1, 1, 255, 255],
                            [1, 1, 255, 255]]])
    (aff,) = region_affinity(fmap(REGION_PIXELS_T, 2, 2), labels, num_classes=3)
    assert aff.tolist() == [pytest.approx(row, abs=1e-12) for row in C_T]


def test_intra_kd_worked_example_and_batch_mean():
    teacher = fmap(REGION_PIXELS_T, 2, 2)  # C_t = [[1, 1/sqrt2], [1/sqrt2, 1]]
    # student, 3 channels: class 0 mean (1, 0, 0), class 1 mean (0, 0, 5) -> orthogonal, C_s = I
    student = fmap([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 5.0], [7.0, 7.0, 7.0]], 2, 2)
    labels = torch.tensor([LABELS])
    # (1/K^2) sum_ij (C_t - C_s)^2 = (0 + 1/2 + 1/2 + 0) / 4 = 1/4
    assert intra_kd(student, teacher, labels, num_classes=3).item() == pytest.approx(0.25, rel=1e-12)
    # a second image with a single region contributes 0 but counts in the mean -> 1/8
    labels2 = torch.tensor([LABELS, [[2, 2], [2, 2]]])
    loss = intra_kd(torch.cat([student, student]), torch.cat([teacher, teacher]), labels2, num_classes=3)
    assert loss.item() == pytest.approx(0.125, rel=1e-12)
    # no image with two regions -> 0, still a differentiable tensor
    zero = intra_kd(student.requires_grad_(True), teacher, torch.tensor([[[2, 2], [2, 255]]]), num_classes=3)
    assert zero.item() == 0.0 and zero.requires_grad


def test_intra_kd_teacher_at_a_higher_resolution():
    # teacher = the student's 2x2 map nearest-upsampled to 4x4: same region means -> loss 0
    student = fmap(REGION_PIXELS_T, 2, 2)
    teacher = torch.nn.functional.interpolate(student, size=(4, 4), mode="nearest")
    labels = torch.tensor([LABELS]).repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    assert intra_kd(student, teacher, labels, num_classes=3).item() == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- gradients

def _pair(shape_s, shape_t, seed):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(*shape_s, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(*shape_t, generator=gen, dtype=torch.float64, requires_grad=True)
    return s, t


LABELS_4 = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 1], [2, 2, 1, 1]]])


@pytest.mark.parametrize("name, loss_fn, shape_s, shape_t", [
    ("pixelwise", lambda s, t: pixelwise_kd(s, t, temperature=2.0), (1, 3, 4, 4), (1, 3, 4, 4)),
    ("pairwise", pairwise_kd, (1, 3, 4, 4), (1, 5, 4, 4)),
    ("cwd", channel_wise_kd, (1, 3, 4, 4), (1, 3, 4, 4)),
    ("intra", lambda s, t: intra_kd(s, t, LABELS_4, num_classes=3), (1, 3, 4, 4), (1, 5, 4, 4)),
])
def test_gradients_reach_the_student_only(name, loss_fn, shape_s, shape_t):
    s, t = _pair(shape_s, shape_t, seed=1)
    loss = loss_fn(s, t)
    assert loss.item() > 0, name
    loss.backward()
    assert t.grad is None, name
    assert s.grad is not None and s.grad.abs().sum().item() > 0, name


def test_gradient_penalty_does_not_reach_real_or_fake():
    # Energy's input gradient is x_hat itself, so the GP graph would reach real/fake if not detached
    real, fake = _pair((2, 3), (2, 3), seed=2)
    gp = gradient_penalty(Energy(), real, fake)
    assert gp.requires_grad
    gp.backward()
    assert real.grad is None and fake.grad is None
    d = linear_discriminator([1.0, 2.0, 2.0])
    gradient_penalty(d, real, fake).backward()
    assert d.weight.grad is not None and real.grad is None
