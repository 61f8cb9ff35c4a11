"""KD-SVD: Lee, Kim, Song, "Self-supervised Knowledge Distillation Using Singular Value
Decomposition", ECCV 2018.

Each stage's feature map F (B x C x H x W) is read as a B x HW x C matrix and compressed
by a truncated SVD: the teacher keeps its first k right singular vectors v_t (C-dim, unit
norm) and singular values (L2-normalised over the k kept), the student its first k + 3
right singular vectors. Each teacher vector is matched to the student vector with the
largest |cosine| (sign-corrected), and both are scaled by the teacher's normalised
singular values. The knowledge is the relation between consecutive stages, compared
through a Gaussian RBF over every pair of channel entries:

    R_l(c, c') = exp(-(v_l[c] - v_{l-1}[c'])^2 / 8)     (per sample, per kept vector)
    L_kdsvd = sum_{l >= 2} sum (R_l^s - R_l^t)^2 / B,   L = CE + beta * L_kdsvd

(non-finite entries of the squared difference are dropped). Defaults: k = 1 (RepDistiller
``KDSVD(k=1)``, mdistiller ``CFG.KDSVD.K``), beta = 1 (mdistiller ``CFG.KDSVD.LOSS.FEAT_WEIGHT``;
the CRD table has no KD-SVD row and RepDistiller's script gives no ``-b`` for it), CE weight 1,
no KD term. Feature points: every stage output, ``stage1``..``stage<stages>`` (RepDistiller
``feat_s[1:-1]``, mdistiller ``feats[1:]``), at least two.

Reference form: the PyTorch port in RepDistiller ``distiller_zoo/KDSVD.py`` (the same in
mdistiller ``distillers/KDSVD.py``), of the authors' TensorFlow code (sseung0703/SSKD_SVD
``nets/Distillation.py``). Deviations, each said where it acts:

- the port needs the student's and teacher's channel counts to agree at each stage (the
  singular vectors are C-dimensional); where they differ, the student's map first goes
  through a trainable 1x1 convolution to the teacher's channels (an extra; none where the
  counts agree, which is the reference case);
- the authors' TF code replaces non-finite SVD gradients by zeros in its own SVD gradient
  (``crop_removenan``); the port lets them through. Here a gradient hook on the student's
  SVD input does the same zeroing, so a degenerate batch cannot put NaN into the student;
- H x W positions, not H x H (the port assumes square maps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.stage_features import StageMethod, with_term
from bench.method import LossInputs
from bench.registry import METHODS


def _finite(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def truncated_svd(feature: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, v): the first ``n`` singular values (L2-normalised) and right singular vectors
    (B x C x n, each column unit norm) of the B x HW x C matrix of ``feature``."""
    x = feature.flatten(2).transpose(1, 2)
    if x.requires_grad:
        x.register_hook(_finite)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    s, v = _finite(s), _finite(vh.transpose(-2, -1))
    return F.normalize(s[:, :n], dim=1), F.normalize(v[:, :, :n], dim=1)


def align_to_teacher(v_s: torch.Tensor, v_t: torch.Tensor) -> torch.Tensor:
    """For each teacher vector, the student vector of largest |cosine|, with the cosine's sign."""
    cosine = v_s.transpose(-2, -1) @ v_t
    best = cosine.abs().amax(dim=1, keepdim=True)
    mask = torch.where(best == cosine.abs(), cosine.sign(), torch.zeros_like(cosine))
    return v_s @ mask


def kdsvd_loss(g_s: list[torch.Tensor], g_t: list[torch.Tensor], k: int) -> torch.Tensor:
    """sum over consecutive stage pairs of the squared RBF-relation differences, divided by B."""
    total, previous = g_s[0].new_zeros(()), None
    for f_s, f_t in zip(g_s, g_t, strict=True):
        with torch.no_grad():
            s_t, v_t = truncated_svd(f_t, k)
        _, v_s = truncated_svd(f_s, k + 3)
        v_s = align_to_teacher(v_s, v_t)
        weight = s_t.unsqueeze(1)
        v_t, v_s = v_t * weight, v_s * weight
        if previous is not None:
            v_sb, v_tb = previous
            rbf_s = torch.exp(-(v_s.unsqueeze(2) - v_sb.unsqueeze(1)).pow(2) / 8)
            rbf_t = torch.exp(-(v_t.unsqueeze(2) - v_tb.unsqueeze(1)).pow(2) / 8)
            total = total + _finite((rbf_s - rbf_t).pow(2)).sum()
        previous = (v_s, v_t)
    return total / g_s[0].shape[0]


@METHODS.register("kdsvd")
class KDSVD(StageMethod):
    """KD-SVD on consecutive stage outputs; see the module docstring."""

    defaults = {"beta": 1.0, "k": 1, "stages": 3}
    ranges = {"beta": "[0, inf)", "k": "[1, inf)", "stages": "[2, 16]"}

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module | None:
        adapters = {p: nn.Conv2d(student_shapes[p][1], teacher_shapes[p][1], 1, bias=False)
                    for p in self.student_features if student_shapes[p][1] != teacher_shapes[p][1]}
        return nn.ModuleDict(adapters) if adapters else None

    def losses(self, inputs: LossInputs, extras: nn.Module | None) -> dict[str, torch.Tensor]:
        g_s, g_t = [], []
        for point, (f_s, f_t) in zip(self.student_features, self.stage_pairs(inputs), strict=True):
            g_s.append(extras[point](f_s) if extras is not None and point in extras else f_s)
            g_t.append(f_t)
        return with_term(inputs, "kdsvd", self.hparams["beta"] * kdsvd_loss(g_s, g_t, int(self.hparams["k"])))
