"""Worked examples and procedure checks for the methods that change the procedure: DML (a peer
trained alongside), CS-KD (same-class pair batches), Tf-KD_reg (a virtual teacher), and the
two-stage methods FitNet, AB, FSP and FT (the engine's init stage).

Reference values were computed in a scratch folder from the authors' code on the fixed tensors
below (``LOGITS``), with the commits named at each test."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from baselines.ab import AB, ab_loss, boundary_loss
from baselines.connectors import ConvReg, Paraphraser, Translator
from baselines.cs_kd import CSKD
from baselines.dml import DML, mutual_loss
from baselines.fitnet import FitNet
from baselines.fsp import fsp_losses
from baselines.ft import factor_loss
from baselines.tf_kd import TfKDReg, virtual_teacher
from bench.distill import Distiller
from bench.engine import seed_everything, train
from bench.method import LossInputs
from bench.protocol import get_protocol
from bench.results import ResultsStore
from bench.runner import RunOptions, Workspace, build_method, run_one

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


# --- two-stage methods: FitNet, AB, FSP, FT -----------------------------------------------------------


def fixed(shape: tuple[int, ...], phase: float, scale: float = 1.0) -> torch.Tensor:
    """A deterministic tensor: sin(1.3 i + phase) * scale over the flattened positions i."""
    return (torch.sin(torch.arange(math.prod(shape), dtype=torch.float32) * 1.3 + phase) * scale).reshape(shape)


def test_ab_loss_matches_repdistiller():
    # HobbitLong/RepDistiller@b84f547c5db6 distiller_zoo/AB.py ABLoss(3)(g_s, g_t): per-stage
    # 0.020475114, 0.014731527, 0.036887713; helper/pretrain.py init sums them
    g_s = [fixed((2, 3, 4, 4), 0.1, 2), fixed((2, 4, 2, 2), 0.2, 2), fixed((2, 5, 2, 2), 0.3, 2)]
    g_t = [fixed((2, 3, 4, 4), 0.7), fixed((2, 4, 2, 2), 0.8), fixed((2, 5, 2, 2), 0.9)]
    assert ab_loss(g_s, g_t).item() == pytest.approx(0.07209435105323792, rel=1e-6)
    assert (0.25 * boundary_loss(g_s[0], g_t[0], 1.0) / 2 * 3 / 1000).item() == pytest.approx(0.02047511376440525,
                                                                                              rel=1e-6)


def test_ab_reads_pre_activations_and_connects_only_where_shapes_differ():
    # RepDistiller train_student.py calls both models with ``preact=True`` for abound; models/util.py
    # ``Connector``: ConvReg without ReLU where channels or height differ, ``nn.Sequential()`` otherwise
    method = AB()
    assert method.student_features == method.teacher_features == ("stage1.preact", "stage2.preact", "stage3.preact")
    shapes = [torch.Size(s) for s in ((2, 4, 8, 8), (2, 8, 4, 4), (2, 16, 2, 2))]
    teacher = [torch.Size(s) for s in ((2, 4, 8, 8), (2, 12, 4, 4), (2, 16, 4, 4))]
    extras = method.build_extras(dict(zip(method.student_features, shapes, strict=True)),
                                 dict(zip(method.teacher_features, teacher, strict=True)))
    assert isinstance(extras[0], torch.nn.Identity)
    assert [type(c).__name__ for c in extras[1:]] == ["ConvReg", "ConvReg"]
    assert isinstance(extras[1].relu, torch.nn.Identity)


def test_fsp_loss_matches_repdistiller():
    # HobbitLong/RepDistiller@b84f547c5db6 distiller_zoo/FSP.py FSP(s_shapes, t_shapes)(f_s, f_t)
    f_s = [fixed((2, 3, 8, 8), 0.1), fixed((2, 3, 8, 8), 0.2), fixed((2, 4, 4, 4), 0.3), fixed((2, 5, 2, 2), 0.4)]
    f_t = [fixed((2, 3, 8, 8), 1.1), fixed((2, 3, 8, 8), 1.2), fixed((2, 4, 4, 4), 1.3), fixed((2, 5, 2, 2), 1.4)]
    expected = [0.00010062848741654307, 0.0013319408753886819, 0.020980313420295715]
    assert [v.item() for v in fsp_losses(f_s, f_t)] == pytest.approx(expected, rel=1e-5)


def test_factor_loss_matches_repdistiller():
    # HobbitLong/RepDistiller@b84f547c5db6 distiller_zoo/FT.py FactorTransfer()(f_s, f_t), p1=2, p2=1:
    # a student factor map twice the teacher's size (pooled), then equal sizes
    assert factor_loss(fixed((2, 4, 4, 4), 0.5), fixed((2, 4, 2, 2), 0.6)).item() == pytest.approx(0.135816752910614,
                                                                                                   rel=1e-6)
    assert factor_loss(fixed((2, 4, 2, 2), 0.5), fixed((2, 4, 2, 2), 0.6)).item() == pytest.approx(
        0.014847937971353531, rel=1e-6)


def test_fitnet_hint_matches_repdistiller():
    # HobbitLong/RepDistiller@b84f547c5db6 distiller_zoo/FitNet.py HintLoss (nn.MSELoss), with the
    # regressor's output given: 0.00509036798030138; the total is CE + 100 * that
    method = FitNet()
    inputs = LossInputs({"stage2": fixed((2, 4, 2, 2), 0.5)}, {"stage2": fixed((2, 4, 2, 2), 0.6)}, None,
                        {"ce": torch.tensor(1.0)})
    terms = method.losses(inputs, torch.nn.Identity())
    assert terms["hint"].item() == pytest.approx(100 * 0.00509036798030138, rel=1e-6)
    assert set(method.init_losses(inputs, torch.nn.Identity())) == {"hint"}
    assert FitNet(hint_layer=0).student_features == ("stem",)


@pytest.mark.parametrize("s_shape,t_shape,kind,weight", [
    # RepDistiller@b84f547c5db6 models/util.py ConvReg: the conv each size relation gets
    ((2, 16, 8, 8), (2, 48, 8, 8), torch.nn.Conv2d, (48, 16, 1, 1)),
    ((2, 16, 16, 16), (2, 48, 8, 8), torch.nn.Conv2d, (48, 16, 3, 3)),
    ((2, 16, 8, 8), (2, 48, 16, 16), torch.nn.ConvTranspose2d, (16, 48, 4, 4)),
    ((2, 16, 9, 9), (2, 48, 8, 8), torch.nn.Conv2d, (48, 16, 2, 2)),
])
def test_conv_reg_shapes_match_repdistiller(s_shape, t_shape, kind, weight):
    reg = ConvReg(torch.Size(s_shape), torch.Size(t_shape))
    assert type(reg.conv) is kind and tuple(reg.conv.weight.shape) == weight
    assert tuple(reg.eval()(torch.zeros(s_shape)).shape) == t_shape


def test_paraphraser_and_translator_sizes_match_repdistiller():
    # RepDistiller@b84f547c5db6 models/util.py: Paraphraser((2, 96, 4, 4)) 290736 parameters,
    # Translator((2, 32, 4, 4), (2, 96, 4, 4)) 44160
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    paraphraser = Paraphraser(torch.Size((2, 96, 4, 4)))
    assert count(paraphraser) == 290736
    assert count(Translator(torch.Size((2, 32, 4, 4)), torch.Size((2, 96, 4, 4)))) == 44160
    factor, reconstruction = paraphraser(torch.zeros(2, 96, 4, 4))
    assert factor.shape == (2, 48, 4, 4) and reconstruction.shape == (2, 96, 4, 4)


def changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}


def test_ft_init_stage_trains_only_the_paraphraser(workspace):
    distiller = make_distiller(workspace, "ft", init_epochs=1)
    extras = distiller.extras
    student, paraphraser, translator = (snapshot(m) for m in (distiller.student, extras["paraphraser"],
                                                                extras["translator"]))
    stats = train(distiller, workspace.splits["train"], workspace.protocol.schedule, "hflip",
                  torch.Generator().manual_seed(0), stage="init")
    assert stats.steps == workspace.task.batches_per_epoch(workspace.splits["train"], 50)
    assert set(stats.final_losses) == {"reconstruction"}
    assert changed(paraphraser, extras["paraphraser"])
    assert not changed(translator, extras["translator"])
    assert not changed(student, distiller.student)  # weights and batch-norm statistics (eval mode)
    assert distiller.stage == "main"


def test_ab_init_stage_trains_the_student_and_connectors_not_the_classifier(workspace):
    distiller = make_distiller(workspace, "ab", init_epochs=1)
    student, connectors = snapshot(distiller.student), snapshot(distiller.extras)
    stats = train(distiller, workspace.splits["train"], workspace.protocol.schedule, "hflip",
                  torch.Generator().manual_seed(0), stage="init")
    assert set(stats.final_losses) == {"ab"}
    moved = changed(student, distiller.student)
    assert any(k.startswith("stages.2.") and k.endswith("weight") for k in moved)
    assert not any(k.startswith("fc.") for k in moved)  # the init loss never reaches the classifier
    assert changed(connectors, distiller.extras)


def test_fsp_main_run_is_cross_entropy_and_init_is_fsp(workspace):
    distiller = make_distiller(workspace, "fsp", init_epochs=1)
    batch = next(workspace.task.train_batches(workspace.splits["train"], 8, "none", torch.Generator().manual_seed(0)))
    assert set(distiller(batch)) == {"ce"}
    distiller.stage = "init"
    assert set(distiller(batch)) == {"fsp"}
    assert distiller.extras is not None and set(distiller.extras) == {"stem", "stage1", "stage2", "stage3"}


@pytest.mark.parametrize("name,hparams,init_epochs",
                         [("ab", {}, 1), ("fitnet", {}, 0), ("fitnet", {"init_epochs": 2}, 2)])
def test_init_stage_is_recorded_as_a_stage(name, hparams, init_epochs, tmp_path):
    ws = smoke_workspace()
    record = run_one(ws.protocol, name, 0, ResultsStore(tmp_path), RunOptions(hparams=hparams), ws)
    assert record["method"]["hparams"]["init_epochs"] == init_epochs
    stages = {s["stage"]: s for s in record["cost"]["stages"]}
    per_epoch = ws.task.batches_per_epoch(ws.splits["train"], ws.protocol.schedule.batch_size)
    if init_epochs:
        assert stages["init"]["model"] == ws.protocol.student and stages["init"]["steps"] == init_epochs * per_epoch
        assert list(stages)[-2:] == ["init", "student"]  # after the teacher, before the main run
        assert record["cost"]["total_train_seconds"] == pytest.approx(
            sum(s["train_seconds"] for s in record["cost"]["stages"]))
    else:
        assert "init" not in stages
    assert record["cost"]["steps"] == per_epoch  # the main run's own steps


def test_init_epochs_default_scales_repdistillers_eighth():
    from bench.protocol import get_protocol as protocol_of

    mini = protocol_of("classification-mini")  # 20 epochs -> round(2.5) = 2; 240 -> 30; smoke 4 -> at least 1
    assert build_method(mini, "fsp").hparams["init_epochs"] == 2
    long = dataclasses.replace(mini, schedule=dataclasses.replace(mini.schedule, epochs=240))
    assert build_method(long, "ab").hparams["init_epochs"] == 30
    assert build_method(protocol_of("classification-smoke"), "ft").hparams["init_epochs"] == 1
    assert build_method(mini, "ft", {"init_epochs": 5}).hparams["init_epochs"] == 5
