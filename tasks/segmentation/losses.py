"""Segmentation distillation losses as pure functions (tensors in, tensors out).

* ``pixelwise_kd``, ``node_affinity``, ``pairwise_kd`` and ``gradient_penalty``: Structured KD,
  Liu, Chen, Liu, Qiao, Luo, Wang, "Structured Knowledge Distillation for Semantic Segmentation",
  CVPR 2019 / TPAMI 2020 (reference code irfanICMLL/structure_knowledge_distillation,
  ``utils/criterion.py``); the holistic term's penalty is WGAN-GP (Gulrajani et al., NeurIPS 2017).
* ``channel_wise_kd``: CWD, Shu, Liu, Gao, Yan, Shen, "Channel-wise Knowledge Distillation for
  Dense Prediction", ICCV 2021 (TorchDistiller ``SemSeg-distill/utils/criterion.py`` ``CriterionCWD``).
* ``region_affinity`` and ``intra_kd``: IntRA-KD, Hou, Ma, Loy, Tang, "Inter-Region Affinity
  Distillation for Road Marking Segmentation", CVPR 2020.

Conventions shared by every loss: the teacher tensors are detached inside the loss (gradients
reach the student arguments only); every loss is averaged over the batch (the SKD reference code
sums its pixel term over the per-GPU batch of 8 instead: ``baselines.skd_pi`` multiplies its weight
by 8 to keep the authors' weight relative to CE); half-precision
inputs are computed in float32 and every other floating dtype is kept.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _compute_dtype(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_4d(name: str, x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(x.shape)}")


def _zero_like_graph(x: Tensor) -> Tensor:
    """A scalar 0 connected to ``x``'s graph (an empty sum: no nan even if x holds inf)."""
    return _compute_dtype(x).reshape(-1)[:0].sum()


def pixelwise_kd(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """SKD pixel-wise distillation ℓ_pi.

    Liu et al., "Structured Knowledge Distillation for Semantic Segmentation", CVPR 2019, pixel-wise distillation:

        ℓ_pi = 1/B · Σ_b 1/(H·W) · Σ_{i ∈ pixels} KL(q^t_{b,i} ‖ q^s_{b,i}),
        q_{b,i} = softmax(z_{b,:,i} / T) over the C classes.

    The paper and the reference code (``CriterionPixelWise``) use the cross-entropy
    Σ_i −q^t_i · log q^s_i / (W·H) with T = 1; the KL used here differs from it by the teacher's
    entropy, a constant with respect to the student, so the gradients are identical and a perfect
    student gets exactly 0. No T² factor is applied (SKD uses T = 1); the reference code sums over
    the per-GPU batch (8 images), here the batch is averaged, and the method's weight carries the
    factor 8 (:mod:`baselines.skd_pi`).

    Args:
        student_logits, teacher_logits: (B, C, H, W) score maps of the same shape; the caller
            resizes one to the other's resolution first.
        temperature: T > 0.
    """
    _check_4d("student_logits", student_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} "
                         "logits differ in shape: resize one to the other first")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_s = F.log_softmax(_compute_dtype(student_logits) / temperature, dim=1)
    log_t = F.log_softmax(_compute_dtype(teacher_logits).detach() / temperature, dim=1)
    per_pixel = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(dim=1)  # (B, H, W)
    # Σ over pixels / (H·W), then the batch mean: the mean over (B, H, W).
    return per_pixel.mean()


def node_affinity(features: Tensor, pool_scale: float = 0.5) -> Tensor:
    """SKD pair-wise node affinity, (B, N, N).

    Liu et al., CVPR 2019 (pair-wise distillation): the feature map is max-pooled into
    nodes with kernel = stride = (⌈pool_scale·H⌉, ⌈pool_scale·W⌉), ``ceil_mode=True`` (partial
    windows at the border form nodes too), so pool_scale 0.5 gives a 2×2 grid of N = 4 nodes.
    Each node feature f_i is L2-normalised over channels and

        a_ij = f_iᵀ f_j / (‖f_i‖·‖f_j‖)    (cosine similarity).

    Nodes are in row-major order of the pooled grid. Differences from the reference code
    (``CriterionPairWiseforWholeFeatAfterPool``): it uses ``int(pool_scale·H)`` (floor) for the
    kernel, equal to the ceiling for even sizes; and it detaches the norm ‖f_i‖, whereas here the
    gradient flows through the normalisation too (the values are identical). A zero node vector
    stays zero (F.normalize with eps 1e-8, the reference adds 1e-8 to the norm).
    """
    _check_4d("features", features)
    if not 0 < pool_scale <= 1:
        raise ValueError(f"pool_scale must lie in (0, 1], got {pool_scale}")
    height, width = features.shape[-2:]
    kernel = (math.ceil(pool_scale * height), math.ceil(pool_scale * width))
    pooled = F.max_pool2d(_compute_dtype(features), kernel_size=kernel, stride=kernel, padding=0, ceil_mode=True)
    nodes = F.normalize(pooled.flatten(2), p=2, dim=1, eps=1e-8)  # (B, C, N)
    return torch.bmm(nodes.transpose(1, 2), nodes)


def pairwise_kd(student_feat: Tensor, teacher_feat: Tensor, pool_scale: float = 0.5) -> Tensor:
    """SKD pair-wise distillation ℓ_pa.

    Liu et al., CVPR 2019, pair-wise distillation:  ℓ_pa = 1/B · Σ_b 1/N² · Σ_{i,j} (a^t_ij − a^s_ij)², with the
    affinities of ``node_affinity`` (reference ``sim_dis_compute``). The channel counts of student
    and teacher may differ (the affinity is N×N for both); the node grids must agree, i.e. the
    spatial sizes must give the same number of nodes.
    """
    _check_4d("student_feat", student_feat)
    _check_4d("teacher_feat", teacher_feat)
    if student_feat.shape[0] != teacher_feat.shape[0]:
        raise ValueError(f"batch sizes differ: {student_feat.shape[0]} vs {teacher_feat.shape[0]}")
    a_s = node_affinity(student_feat, pool_scale)
    a_t = node_affinity(teacher_feat.detach(), pool_scale)
    if a_s.shape != a_t.shape:
        raise ValueError(f"student and teacher give different node grids: {tuple(a_s.shape)} vs {tuple(a_t.shape)}")
    n = a_s.shape[-1]
    return ((a_t - a_s) ** 2).sum(dim=(1, 2)).mean() / (n * n)


def channel_wise_kd(student: Tensor, teacher: Tensor, tau: float = 4.0) -> Tensor:
    """CWD: channel-wise distillation.

    Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021:
    for each image b and channel c, φ(y_{b,c}) = softmax over the H·W locations of y_{b,c,i} / τ, and

        L_cwd = τ² / (B·C) · Σ_b Σ_c Σ_i φ(y^T_{b,c})_i · log(φ(y^T_{b,c})_i / φ(y^S_{b,c})_i),

    i.e. KL(φ_t ‖ φ_s) summed over locations, averaged over (b, c), times τ² (TorchDistiller
    ``CriterionCWD`` with ``norm_type='channel'``, ``divergence='kl'``; official τ = 4, weight 3).
    Applies to logits or to features of the same shape (the caller aligns channels/size).
    """
    _check_4d("student", student)
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ in shape")
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    b, c = student.shape[:2]
    log_s = F.log_softmax(_compute_dtype(student).flatten(2) / tau, dim=2)
    log_t = F.log_softmax(_compute_dtype(teacher).detach().flatten(2) / tau, dim=2)
    kl = F.kl_div(log_s, log_t, reduction="sum", log_target=True)
    return kl * (tau**2) / (b * c)


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP gradient penalty (SKD's holistic term trains D with it, weight 10).

    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Algorithm 1:

        x̂ = ε·x_real + (1 − ε)·x_fake,  ε ~ U(0, 1) one per sample,
        GP = 1/B · Σ_b (‖∇_x̂ D(x̂_b)‖₂ − 1)²,

    the norm taken over all non-batch dimensions of sample b. ``real`` and ``fake`` are detached
    (the penalty regularises D only); the gradient is taken with ``create_graph=True`` so the
    returned GP can be back-propagated into D's parameters. ε is drawn with ``torch.rand`` from
    ``generator`` (on the generator's device) when given, else from the global RNG. If D returns
    a tuple or list (e.g. SAGAN's (out, attn1, attn2)), its first element is the score.

    The critic value of a sample is the *mean* of D's output over its non-batch dimensions, the
    same reduction as the WGAN terms E[D(x)] (``D(x).mean()``), so the penalty constrains the
    gradient of the function the losses use. The reference code (``CriterionAdditionalGP``)
    differentiates the sum (``grad_outputs=ones``) but its D ends in a 4x4 convolution without
    padding that leaves one score per sample, where sum and mean coincide; with a patch map
    (P scores per sample) the sum would penalise a gradient P times the losses' critic.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    if real.dim() < 2:
        raise ValueError(f"real and fake must be (B, ...), got shape {tuple(real.shape)}")
    batch = real.shape[0]
    eps_shape = (batch,) + (1,) * (real.dim() - 1)
    if generator is not None:
        eps = torch.rand(eps_shape, generator=generator, device=generator.device, dtype=real.dtype)
        eps = eps.to(real.device)
    else:
        eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    score = discriminator(x_hat)
    if isinstance(score, tuple | list):
        score = score[0]
    if score.numel() % batch or score.shape[0] != batch:
        raise ValueError(f"the discriminator returned a score of shape {tuple(score.shape)} for {batch} samples; "
                         "expected (B, ...) with B first")
    critic = score.reshape(batch, -1).mean(dim=1)  # one value per sample, as E[D(x)] reduces it
    (grad,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
    norms = torch.linalg.vector_norm(grad.reshape(batch, -1), ord=2, dim=1)
    return ((norms - 1) ** 2).mean()


def _resize_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, H, W) int labels → (B, h, w) by nearest neighbour (torch 'nearest': src = ⌊dst · H/h⌋)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels.long()
    resized = F.interpolate(labels[:, None].double(), size=size, mode="nearest")
    return resized[:, 0].long()


def _region_nodes(features: Tensor, labels: Tensor, num_classes: int,
                  ignore_index: int) -> list[tuple[list[int], Tensor]]:
    """Per image: (sorted classes present, (K, C) mean feature of each class's region)."""
    _check_4d("features", features)
    if labels.dim() != 3 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels must be (B, H, W) with B = {features.shape[0]}, got {tuple(labels.shape)}")
    if labels.is_floating_point():
        raise TypeError("labels must be an integer class map")
    feats = _compute_dtype(features)
    small = _resize_labels(labels.to(feats.device), tuple(feats.shape[-2:])).flatten(1)  # (B, h*w)
    out = []
    for b in range(feats.shape[0]):
        lab = small[b]
        valid = (lab != ignore_index) & (lab >= 0) & (lab < num_classes)
        classes = sorted(int(c) for c in torch.unique(lab[valid]))
        if not classes:
            out.append(([], feats.new_zeros(0, feats.shape[1])))
            continue
        masks = (lab[None, :] == torch.tensor(classes, device=lab.device)[:, None]).to(feats.dtype)  # (K, h*w)
        sums = masks @ feats[b].flatten(1).T  # (K, C)
        out.append((classes, sums / masks.sum(dim=1, keepdim=True)))
    return out


def _cosine(nodes: Tensor) -> Tensor:
    unit = F.normalize(nodes, p=2, dim=1, eps=1e-8)
    return unit @ unit.T


def region_affinity(features: Tensor, labels: Tensor, num_classes: int, ignore_index: int = 255) -> list[Tensor]:
    """IntRA-KD inter-region affinity graphs, one (K_b, K_b) tensor per image.

    Hou et al., "Inter-Region Affinity Distillation for Road Marking Segmentation", CVPR 2020
    (inter-region affinity): the label map is resized to the feature size (h, w) by nearest neighbour; every class
    c in [0, num_classes) present there (``ignore_index`` and out-of-range labels excluded) is a
    region (area of interest) with mask M_c; its node is the per-channel mean
    μ_c = Σ_i M_c(i)·F(i) / Σ_i M_c(i); and C_ij = μ_iᵀμ_j / (‖μ_i‖·‖μ_j‖) (cosine).

    Only the first moment (mean) is used: the paper's moment pooling also concatenates per-channel
    variance and skewness into the node feature, which this implementation leaves out. Regions are
    ordered by ascending class id; K_b = 0 gives a (0, 0) tensor.

    Args:
        features: (B, C, h, w).
        labels: (B, H, W) integer ground truth at any resolution.
    """
    return [_cosine(nodes) for _, nodes in _region_nodes(features, labels, num_classes, ignore_index)]


def intra_kd(student_feat: Tensor, teacher_feat: Tensor, labels: Tensor, num_classes: int,
             ignore_index: int = 255) -> Tensor:
    """IntRA-KD loss: 1/B · Σ_b 1/K_b² · Σ_ij (C^t_ij − C^s_ij)².

    Hou et al., CVPR 2020 (inter-region affinity loss), with the affinities of ``region_affinity`` (mean-only nodes).
    An image with K_b < 2 regions contributes 0 but still counts in the batch mean. Channel counts
    may differ; if the spatial sizes differ, the labels are resized to each separately and only the
    classes present at both resolutions are compared.
    """
    if student_feat.shape[0] != teacher_feat.shape[0]:
        raise ValueError(f"batch sizes differ: {student_feat.shape[0]} vs {teacher_feat.shape[0]}")
    nodes_s = _region_nodes(student_feat, labels, num_classes, ignore_index)
    nodes_t = _region_nodes(teacher_feat.detach(), labels, num_classes, ignore_index)
    total = _zero_like_graph(student_feat)
    for (classes_s, mu_s), (classes_t, mu_t) in zip(nodes_s, nodes_t, strict=True):
        common = sorted(set(classes_s) & set(classes_t))
        k = len(common)
        if k < 2:
            continue
        mu_s = mu_s[[classes_s.index(c) for c in common]]
        mu_t = mu_t[[classes_t.index(c) for c in common]].to(mu_s.dtype)
        total = total + ((_cosine(mu_t) - _cosine(mu_s)) ** 2).sum() / (k * k)
    return total / student_feat.shape[0]
