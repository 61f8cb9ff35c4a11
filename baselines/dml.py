"""DML: Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning", CVPR 2018
(YingZhangDUT/Deep-Mutual-Learning).

No pretrained teacher: two students of the same architecture, each with its own initialisation,
learn together, each from the labels and from the other's prediction (T=1):

    L_1 = CE(z_1, y) + KL(p_2 || p_1),      L_2 = CE(z_2, y) + KL(p_1 || p_2),      p_k = softmax(z_k)

with the KL summed over classes and averaged over the batch (``train_models.py``
``kl_loss_compute``; with two networks the paper's 1/(K-1) is 1). ``weight`` scales the KL
(1 in the paper).

The procedure is the paper's Algorithm 1, both models updated on every mini-batch: predictions
p_1, p_2; update the student (the engine's step, p_2 detached); recompute p_1 with the updated
student; update the peer on L_2 (p_1 detached). The peer (``Method.peer_student``: built by the
Distiller from a seed derived from the run's) is trained in :meth:`DML.after_step` with its own
optimizer, the student's optimizer and rate schedule (``Method.bind_optimizer``), as the reference
gives each network its own optimizer of the same settings. It is not a method extra stepped by the
student's optimizer: that would be a simultaneous update in which the peer learns from the
student's prediction before the student's step, not the paper's alternating one. The peer's p_2 in
its own update is that of step 1 (its weights have not changed since; the same mini-batch); the
recomputed p_1 uses the student in training mode (batch statistics) with its batch-norm running
statistics restored afterwards, so the student's running statistics see each batch once, as in the
reference, where each network's update ops run only in its own train op.

The record is the first student's; the peer's parameters are counted as extra parameters.
Feature points: the logits only. Deviations: the schedule is the protocol's (the paper: SGD with
Nesterov momentum, lr 0.1 divided by 10 every 60 epochs, 200 epochs); the reference's TF code
adds 1e-8 inside its log and draws a new mini-batch for each network's step, the paper's
algorithm (followed here) uses one mini-batch for both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.kd import soft_kl
from bench.method import LossInputs, Method
from bench.registry import METHODS
from bench.task import Batch


def mutual_loss(logits: torch.Tensor, other_logits: torch.Tensor, targets: torch.Tensor,
                weight: float = 1.0) -> torch.Tensor:
    """CE(z, y) + weight * KL(softmax(z_other) || softmax(z)), the other network's prediction detached."""
    return F.cross_entropy(logits, targets) + weight * soft_kl(logits, other_logits.detach(), 1.0)


@METHODS.register("dml")
class DML(Method):
    """Deep mutual learning with one peer; see the module docstring."""

    defaults = {"weight": 1.0}
    ranges = {"weight": "[0, inf)"}
    teacher_features = ()
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols
    peer_student = True

    def __init__(self, **hparams):
        super().__init__(**hparams)
        self.peer: nn.Module | None = None
        self.student: nn.Module | None = None
        self.task = None
        self.optimizer = self.lr_scheduler = None
        self._last: tuple[Batch, torch.Tensor] | None = None

    def bind_peer(self, peer: nn.Module, student: nn.Module, task) -> None:
        self.peer, self.student, self.task = peer, student, task

    def bind_optimizer(self, make) -> None:
        self.optimizer, self.lr_scheduler = make(list(self.peer.parameters()))
        self.peer.train()

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        return [] if self.peer is None else list(self.peer.parameters())

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        batch = Batch(inputs.inputs, inputs.targets, inputs.indices, None)
        peer_logits, _ = self.task.forward_train(self.peer, batch)  # kept with its graph for the peer's step
        self._last = (batch, peer_logits)
        terms = dict(inputs.task_losses)
        terms["mutual"] = self.hparams["weight"] * soft_kl(inputs.student["logits"], peer_logits.detach(), 1.0)
        return terms

    def state_dict(self) -> dict:
        """The peer, its optimiser and its rate scheduler (a checkpoint resumes the peer too)."""
        if self.peer is None or self.optimizer is None:
            return {}
        return {"peer": self.peer.state_dict(), "optimizer": self.optimizer.state_dict(),
                "lr_scheduler": self.lr_scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.peer.load_state_dict(state["peer"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])

    def after_step(self, step: int) -> None:
        """The peer's update on the same mini-batch, against the updated student's prediction."""
        if self._last is None or self.optimizer is None:
            return
        batch, peer_logits = self._last
        self._last = None
        running = {name: b.clone() for name, b in self.student.named_buffers()}
        with torch.no_grad():
            student_logits = self.task.forward_features(self.student, batch)
        for name, b in self.student.named_buffers():
            b.copy_(running[name])
        loss = mutual_loss(peer_logits, student_logits, batch.targets, self.hparams["weight"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.lr_scheduler.step()
