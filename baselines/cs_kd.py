"""CS-KD: Yun, Park, Lee, Shin, "Regularizing Class-wise Predictions via Self-knowledge
Distillation", CVPR 2020 (alinlab/cs-kd).

No teacher: the student's prediction on another sample x' of the same class, detached, is the
soft target for its prediction on x:

    L = CE(z(x), y) + lambda * T^2 * KL(softmax(z(x')/T) || softmax(z(x)/T))

with the KL summed over classes and divided by the batch size (``train.py`` ``KDLoss``:
``KLDivLoss(reduction="sum") * T^2 / B``). Defaults T=4, lambda=1 (the README's CIFAR-100
command ``-cls --lamda 1``, ``--temp`` default 4; fine-grained sets use lambda=3).

The procedure, through the engine's hooks: each batch holds B samples then B same-class partners
(``Method.same_class_pairs``: :meth:`bench.task.Task.pair_batches`, the reference's
``PairBatchSampler``, B the protocol's batch size, so a step sees 2B images as in the reference);
the student's forward (:meth:`CSKD.forward_train`) runs the first half with gradients, which alone
gets the cross-entropy, and the partner half separately without gradients, as ``train.py`` does
(so batch-norm statistics are those of each half, and the running statistics are updated twice).

Feature points: the logits only. Deviations: none known; the schedule is the protocol's.
"""

from __future__ import annotations

import torch

from baselines.kd import soft_kl
from bench.method import LossInputs, Method
from bench.registry import METHODS
from bench.task import Batch


def halves(batch: Batch) -> tuple[Batch, Batch]:
    """The samples and their partners of a pair batch (first and second half)."""
    half = len(batch.targets) // 2

    def part(value, sl):
        return None if value is None else value[sl]

    first, second = slice(0, half), slice(half, None)
    return tuple(Batch(part(batch.inputs, s), part(batch.targets, s), part(batch.indices, s),
                       part(batch.variants, s)) for s in (first, second))


@METHODS.register("cs-kd")
class CSKD(Method):
    """Class-wise self-knowledge distillation; see the module docstring."""

    defaults = {"T": 4.0, "lambda": 1.0}
    ranges = {"T": "(0, inf)", "lambda": "[0, inf)"}
    teacher_features = ()
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols
    same_class_pairs = True

    def forward_train(self, task, model, batch: Batch):
        """Output: the first half's logits (with gradients) then the partners' (without); task losses:
        the first half's only."""
        samples, partners = halves(batch)
        output, task_losses = task.forward_train(model, samples)
        with torch.no_grad():
            partner_output = task.forward_features(model, partners)
        return torch.cat([output, partner_output]), task_losses

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        logits = inputs.student["logits"]
        half = len(logits) // 2
        terms = dict(inputs.task_losses)
        terms["class_wise"] = self.hparams["lambda"] * soft_kl(logits[:half], logits[half:].detach(),
                                                               self.hparams["T"])
        return terms
