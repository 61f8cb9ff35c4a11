"""The accuracy gate catches realistic bugs (issue 11 §1, "prove it").

One test per mutation class of the audit: each bug is planted with
``monkeypatch``, the smallest smoke run that exercises it is repeated (one
method, seed 0), and the exact-mode gate must FAIL on a *value* (metrics, not
just the recorded hyperparameters); the clean code and a benign rewrite (the
same KL written with ``F.kl_div``) must PASS. The reference is the clean code's
run of the same subset in this session (the committed reference is for the
whole tier; ``kdbench regress`` checks that one).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import baselines.cwd
import baselines.kd
from baselines.fgfi import FGFI
from baselines.kd import KD
from bench import regress
from bench.identity import make_identity, protocol_spec
from bench.protocol import get_protocol
from bench.registry import PROTOCOLS
from bench.results import ResultsStore
from bench.runner import RunOptions, run_one
from bench.task import Task

#: (protocol, method) runs, seed 0: the smallest smoke runs that exercise every planted bug
RUNS = (("classification-smoke", "kd"), ("classification-smoke", "baseline"),
        ("segmentation-smoke", "cwd"), ("detection-smoke", "fgfi"))


def run(root, runs=RUNS) -> list[dict]:
    """Run ``runs`` (seed 0) in this process, so that monkeypatched code is what trains."""
    store = ResultsStore(root)
    for name, method in runs:
        run_one(get_protocol(name).with_seeds((0,)), method, 0, store, RunOptions(progress=False))
    return list(store.records())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict]:
    return run(tmp_path_factory.mktemp("reference"))


def gate(current, reference) -> list[regress.Check]:
    """The failed checks of the exact-mode gate."""
    return [c for c in regress.compare(current, reference) if c.failed]


def assert_values_fail(current, reference, protocol: str, method: str):
    failed = gate(current, reference)
    values = [c for c in failed if c.metric != regress.RECORD_CHECK]
    assert values, f"the gate missed the bug: {failed}"
    finite = [abs(c.current - c.reference) for c in values if c.status == "changed"]
    print(f"{protocol} {method}: {len(values)} values changed, largest by {max(finite, default=float('nan')):.3g}")
    assert {(c.protocol.split("@")[0], c.method) for c in failed} == {(protocol, method)}


def test_clean_code_passes(reference, tmp_path):
    current = run(tmp_path)
    assert not gate(current, reference)
    primaries = {(get_protocol(name).key, get_protocol(name).primary_metric) for name, _ in RUNS}
    stuck = [c for c in regress.compare(current, reference) if (c.protocol, c.metric) in primaries and not c.can_fail]
    assert not stuck, f"primary metrics at 0 cannot catch a drop: {stuck}"


def test_benign_rewrite_passes(reference, tmp_path, monkeypatch):
    def kl_map(student_logits, target_log_probs, temperature):  # the same KL, through F.kl_div
        log_p_s = F.log_softmax(student_logits / temperature, dim=1)
        return temperature**2 * F.kl_div(log_p_s, target_log_probs, reduction="none", log_target=True).sum(dim=1)

    monkeypatch.setattr(baselines.kd, "kl_map", kl_map)
    assert not gate(run(tmp_path, RUNS[:1]) + [r for r in reference if r["method"]["name"] != "kd"], reference)


KD_RUN = (("classification-smoke", "kd"),)


def kd_mutation(kind):
    """KD's per-location KL with one planted bug."""
    def kl_map(student_logits, target_log_probs, temperature):
        log_p_s = F.log_softmax(student_logits / temperature, dim=1)
        if kind == "reversed":  # KL(p_s || q) instead of KL(q || p_s)
            return temperature**2 * (log_p_s.exp() * (log_p_s - target_log_probs)).sum(dim=1)
        return (target_log_probs.exp() * (target_log_probs - log_p_s)).sum(dim=1)  # no T^2
    return kl_map


@pytest.mark.parametrize("kind", ["no T^2", "reversed"])
def test_kd_kl_mutations_fail(reference, tmp_path, monkeypatch, kind):
    monkeypatch.setattr(baselines.kd, "kl_map", kd_mutation(kind))
    assert_values_fail(run(tmp_path, KD_RUN) + [r for r in reference if r["method"]["name"] != "kd"],
                       reference, "classification-smoke", "kd")


def test_kd_alpha_on_the_wrong_term_fails(reference, tmp_path, monkeypatch):
    def losses(self, inputs, extras):
        alpha, temperature = self.hparams["alpha"], self.hparams["T"]
        terms = {name: alpha * value for name, value in inputs.task_losses.items()}
        terms["kd"] = (1 - alpha) * baselines.kd.soft_kl(inputs.student["logits"], inputs.teacher["logits"],
                                                         temperature)
        return terms

    monkeypatch.setattr(KD, "losses", losses)
    assert_values_fail(run(tmp_path, KD_RUN) + [r for r in reference if r["method"]["name"] != "kd"],
                       reference, "classification-smoke", "kd")


def test_training_flip_removed_fails(reference, tmp_path, monkeypatch):
    monkeypatch.setattr(Task, "augment", lambda self, inputs, variants, augmentation: inputs)
    current = run(tmp_path, (("classification-smoke", "baseline"),))
    assert_values_fail(current + [r for r in reference if r["method"]["name"] != "baseline"],
                       reference, "classification-smoke", "baseline")


def test_cwd_without_tau_squared_fails(reference, tmp_path, monkeypatch):
    original = baselines.cwd.channel_wise_kd
    monkeypatch.setattr(baselines.cwd, "channel_wise_kd",
                        lambda student, teacher, tau: original(student, teacher, tau) / tau**2)
    current = run(tmp_path, (("segmentation-smoke", "cwd"),))
    assert_values_fail(current + [r for r in reference if r["method"]["name"] != "cwd"],
                       reference, "segmentation-smoke", "cwd")


def test_fgfi_psi_zero_fails(reference, tmp_path, monkeypatch):
    """psi = 0 inside the loss (the recorded hyperparameter stays 0.5): only the metrics can tell."""
    original = FGFI.losses

    def losses(self, inputs, extras):
        saved, self.hparams["psi"] = self.hparams["psi"], 0.0
        try:
            return original(self, inputs, extras)
        finally:
            self.hparams["psi"] = saved

    monkeypatch.setattr(FGFI, "losses", losses)
    current = run(tmp_path, (("detection-smoke", "fgfi"),))
    assert_values_fail(current + [r for r in reference if r["method"]["name"] != "fgfi"],
                       reference, "detection-smoke", "fgfi")


def published_record(protocol) -> dict:
    """A published-style record of ``protocol`` (the parts the published check reads)."""
    from bench.runner import build_method

    hparams = build_method(protocol, "baseline").hparams
    return {"protocol": {"name": protocol.name, "key": protocol.key, "hash": protocol.spec_hash,
                         "spec": protocol_spec(protocol)},
            "method": {"name": "baseline", "hparams": hparams},
            "identity": make_identity(protocol.spec_hash, "baseline", hparams, hparams, [], "d", 0),
            "seed": 0, "metrics": {protocol.primary_metric: 50.0}, "primary_metric": protocol.primary_metric}


@pytest.mark.parametrize("name", ["classification-smoke", "classification-mini"])
def test_protocol_lr_changed_without_version_bump_fails(reference, monkeypatch, name):
    original = get_protocol(name)
    published = published_record(original)
    edited = dataclasses.replace(original, schedule=dataclasses.replace(original.schedule,
                                                                        lr=original.schedule.lr * 2))
    monkeypatch.setitem(PROTOCOLS._registry.module_dict, name, lambda: edited)
    assert get_protocol(name).key == original.key  # same version: only the hash tells
    expected = f"schedule.lr: {original.schedule.lr!r} -> {edited.schedule.lr!r}"
    checks, _ = regress.check_published([published])
    assert [c.status for c in checks] == ["protocol changed"] and expected in checks[0].detail
    if name == "classification-smoke":  # the smoke reference is caught before any training too
        failed = gate(reference, reference)
        assert {c.status for c in failed} == {"protocol changed"}
        assert {c.method for c in failed} == {"kd", "baseline"} and expected in failed[0].detail


def test_planted_bugs_change_the_loss_not_only_the_metrics():
    """Sanity of the plants themselves: each changes the loss on the same tensors."""
    torch.manual_seed(0)
    student, teacher = torch.randn(8, 5), torch.randn(8, 5)
    log_q = F.log_softmax(teacher / 4.0, dim=1)
    clean = baselines.kd.kl_map(student, log_q, 4.0)
    for kind in ("no T^2", "reversed"):
        assert not torch.allclose(kd_mutation(kind)(student, log_q, 4.0), clean)
