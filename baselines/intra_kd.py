"""Inter-region affinity distillation (IntRA-KD): Hou, Ma, Loy, Tang, "Inter-Region Affinity
Distillation for Road Marking Segmentation", CVPR 2020.

Regions come from the ground-truth label map (one per class present, resized to
the feature map); each region is a node whose feature is the channel-wise mean
of the feature inside it; the affinity is the cosine between nodes, and

    L_intra = 1/K^2 sum_ij (C_t_ij - C_s_ij)^2,   L = CE + weight * L_intra

on the PSP feature (``psp.out``) (:func:`tasks.segmentation.losses.intra_kd`).
Not confirmed against the paper here: the paper's nodes also carry variance
and skewness moments (only the mean is used) and its loss weight (1.0 is an
unverified choice); the paper uses IntRA-KD alongside KD, this entry alone.
"""

from __future__ import annotations

import torch

from bench.method import LossInputs, Method
from bench.registry import METHODS
from tasks.segmentation.losses import intra_kd


@METHODS.register("intra-kd")
class IntraKD(Method):
    """Inter-region affinity distillation from ground-truth regions; see the module docstring."""

    defaults = {"weight": 1.0}
    student_features = ("psp.out",)
    teacher_features = ("psp.out",)
    tasks = ("segmentation",)

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        terms = dict(inputs.task_losses)
        num_classes = inputs.student["logits"].shape[1]  # the model's output: (B, classes, H, W)
        terms["intra"] = self.hparams["weight"] * intra_kd(inputs.student["psp.out"], inputs.teacher["psp.out"],
                                                           inputs.targets, num_classes)
        return terms
