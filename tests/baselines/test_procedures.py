"""Worked examples and procedure checks for the methods that change the procedure: DML (a peer
trained alongside), CS-KD (same-class pair batches) and Tf-KD_reg (a virtual teacher).

Reference values were computed in a scratch folder from the authors' code on the fixed tensors
below (``LOGITS``), with the commits named at each test."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from baselines.cs_kd import CSKD
from baselines.dml import DML, mutual_loss
from baselines.tf_kd import TfKDReg, virtual_teacher
from bench.distill import Distiller
from bench.engine import seed_everything, train
from bench.method import LossInputs
from bench.protocol import get_protocol
from bench.runner import RunOptions, Workspace, build_method

#: 8 x 5 fixed logits (no random generator involved)
LOGITS = torch.sin(torch.arange(40.0) * 1.3).reshape(8, 5) * 3
TARGETS = torch.tensor([0, 3, 1, 4, 0, 3, 1, 4])


def loss_inputs(logits: torch.Tensor, targets: torch.Tensor, ce_rows: slice = slice(None)) -> LossInputs:
    return LossInputs({"logits": logits}, {}, targets, {"ce": F.cross_entropy(logits[ce_rows], targets[ce_rows])})


# --- Tf-KD_reg -------------------------------------------------------------------------------


@pytest.mark.parametrize("hparams,expected", [
    # yuanli2333/Teacher-free-Knowledge-Distillation@d000ab378a40 my_loss_function.py
    # loss_kd_regularization(LOGITS[:4], TARGETS[:4], params), params as named (base_mobilenetv2, base_resnet18)
    ({"T": 40.0, "alpha": 0.95, "multiplier": 1.0}, 0.47222670912742615),
    ({"T": 20.0, "alpha": 0.1, "multiplier": 100.0}, 6.2351393699646),
])
def test_tf_kd_reg_matches_the_authors_loss(hparams, expected):
    method = TfKDReg(**hparams)
    total = sum(method.losses(loss_inputs(LOGITS[:4], TARGETS[:4]), None).values())
    assert total.item() == pytest.approx(expected, rel=1e-6)


def test_virtual_teacher_is_a_softened_peak_on_the_true_class():
    q = virtual_teacher(torch.tensor([2]), 5, 40.0).exp()[0]
    assert q.sum().item() == pytest.approx(1.0)
    assert q.argmax().item() == 2 and q[2] < 0.21  # nearly uniform at T=40
    assert torch.allclose(q[[0, 1, 3, 4]], q[0].expand(4))


# --- DML ---------------------------------------------------------------------------------------


def test_dml_mutual_loss_matches_the_reference():
    # YingZhangDUT/Deep-Mutual-Learning@34a20583debe train_models.py _tower_loss with two networks
    # (softmax CE + kl_loss_compute(logits_i, logits_j)), ported to numpy (TF1 is not installable);
    # its 1e-8 inside the log moves the value by < 1e-7
    z1, z2, y = LOGITS[:4], LOGITS[4:], TARGETS[:4]
    assert mutual_loss(z1, z2, y).item() == pytest.approx(4.347044014280589, abs=1e-5)
    assert mutual_loss(z2, z1, y).item() == pytest.approx(3.5331518340564556, abs=1e-5)


def smoke_workspace(epochs: int = 1) -> Workspace:
    smoke = get_protocol("classification-smoke")
    protocol = dataclasses.replace(smoke, name="classification-smoke-procedures",
                                   schedule=dataclasses.replace(smoke.schedule, epochs=epochs), seeds=(0,))
    return Workspace(protocol, RunOptions())


@pytest.fixture(scope="module")
def workspace():
    return smoke_workspace()


def make_distiller(ws: Workspace, name: str, **hparams) -> Distiller:
    method = build_method(ws.protocol, name, hparams)
    _, teachers = ws.teacher_inputs(method, cached=False)
    seed_everything(0)
    student = ws.task.build_model(ws.protocol.student, len(ws.splits["train"].classes))
    distiller = Distiller(ws.task, student, ws.protocol.student, method, teachers)
    probe = ws.task.collate(ws.splits["train"], torch.arange(2), torch.zeros(2, dtype=torch.long), "none")
    distiller.build_extras(probe)
    return distiller


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_dml_trains_its_peer_alongside_the_student(workspace):
    distiller = make_distiller(workspace, "dml")
    method: DML = distiller.method
    peer, student = method.peer, distiller.student
    assert peer is not None and type(peer) is type(student)
    # its own initialisation, and the global random state untouched by building it
    assert not torch.equal(next(peer.parameters()), next(student.parameters()))
    seed_everything(0)
    again = workspace.task.build_model(workspace.protocol.student, len(workspace.splits["train"].classes))
    assert torch.equal(next(again.parameters()), next(student.parameters()))
    assert distiller.extra_parameter_count() == sum(p.numel() for p in student.parameters())
    peer_before, student_before = snapshot(peer), snapshot(student)
    stats = train(distiller, workspace.splits["train"], workspace.protocol.schedule, "hflip",
                  torch.Generator().manual_seed(0))
    assert stats.steps > 0
    for before, model in ((peer_before, peer), (student_before, student)):
        after = model.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    # the peer's optimizer follows the student's schedule (cosine to 0 over the run)
    assert method.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_dml_peer_step_leaves_the_students_running_statistics(workspace):
    distiller = make_distiller(workspace, "dml")
    method: DML = distiller.method
    def make(params):
        optimizer = torch.optim.SGD(params, lr=0.1)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)

    method.bind_optimizer(make)
    batch = next(workspace.task.train_batches(workspace.splits["train"], 8, "none", torch.Generator().manual_seed(0)))
    distiller(batch)
    buffers = {k: v.clone() for k, v in distiller.student.named_buffers()}
    peer_before = snapshot(method.peer)
    method.after_step(1)
    assert all(torch.equal(buffers[k], v) for k, v in distiller.student.named_buffers())
    assert any(not torch.equal(peer_before[k], v) for k, v in method.peer.state_dict().items())


# --- CS-KD ---------------------------------------------------------------------------------------


def test_cs_kd_loss_matches_the_authors_code():
    # alinlab/cs-kd@b447f250405932501cb28db0dc09eadeab526b80 train.py train() with -cls, --temp 4,
    # --lamda 1: CE(outputs of the first half) + KDLoss(outputs, outputs_cls) = 3.37795186 + 1.54485166
    terms = CSKD().losses(loss_inputs(LOGITS, TARGETS, slice(0, 4)), None)
    assert terms["ce"].item() == pytest.approx(3.3779518604278564, rel=1e-6)
    assert terms["class_wise"].item() == pytest.approx(1.5448516607284546, rel=1e-6)
    assert sum(terms.values()).item() == pytest.approx(4.9228034019470215, rel=1e-6)


def test_pair_batches_hold_same_class_partners(workspace):
    task, split = workspace.task, workspace.splits["train"]
    batches = list(task.pair_batches(split, 50, "hflip", torch.Generator().manual_seed(0)))
    assert len(batches) == task.batches_per_epoch(split, 50)
    seen = []
    for batch in batches:
        assert len(batch.targets) == 100
        first, partners = batch.indices[:50], batch.indices[50:]
        assert torch.equal(split.targets[first], split.targets[partners])
        assert torch.equal(batch.targets[:50], batch.targets[50:])
        assert (first != partners).any()  # partners are drawn, not copies
        seen.append(first)
    assert len(torch.cat(seen).unique()) == 50 * len(batches)  # the first halves walk a permutation
    again = next(task.pair_batches(split, 50, "hflip", torch.Generator().manual_seed(0)))
    assert torch.equal(again.indices, batches[0].indices) and torch.equal(again.inputs, batches[0].inputs)


def test_cs_kd_forward_runs_the_partners_without_gradients(workspace):
    distiller = make_distiller(workspace, "cs-kd")
    batch = next(workspace.task.pair_batches(workspace.splits["train"], 4, "none", torch.Generator().manual_seed(0)))
    inputs = distiller.loss_inputs(batch)
    logits = inputs.student["logits"]
    assert logits.shape[0] == 8
    logits[4:].sum().backward(retain_graph=True)  # the partner half carries no gradient to the student
    assert all(p.grad is None or not p.grad.any() for p in distiller.student.parameters())
    expected_ce = F.cross_entropy(logits[:4], batch.targets[:4])
    assert inputs.task_losses["ce"].item() == pytest.approx(expected_ce.item(), rel=1e-6)


def test_cs_kd_trains_on_pair_batches(workspace):
    distiller = make_distiller(workspace, "cs-kd")
    sizes = []
    original = distiller.method.forward_train

    def spy(task, model, batch):
        sizes.append(len(batch.targets))
        return original(task, model, batch)

    distiller.method.forward_train = spy
    stats = train(distiller, workspace.splits["train"], workspace.protocol.schedule, "hflip",
                  torch.Generator().manual_seed(0))
    assert stats.steps == len(sizes) and set(sizes) == {2 * workspace.protocol.schedule.batch_size}
