"""AT, SP, NST, PKT, RKD, CC, VID and KD-SVD against their reference implementations on fixed tensors.

Every GOLDEN value below was computed by running the reference loss, HobbitLong/RepDistiller
``distiller_zoo/<name>.py`` at commit b84f547 (Merge pull request #55), unmodified, in float64 on
the same tensors (``fixed`` below), with a scratch script outside the repository. Each method's
term is compared with beta = 1 (its other weights at their defaults).
"""

from __future__ import annotations

import math

import pytest
import torch

from baselines.at import AttentionTransfer
from baselines.cc import CorrelationCongruence
from baselines.kdsvd import KDSVD
from baselines.nst import NeuronSelectivityTransfer
from baselines.pkt import ProbabilisticKT
from baselines.rkd import RelationalKD
from baselines.sp import SimilarityPreserving
from baselines.stage_features import match_spatial
from baselines.vid import VariationalInformationDistillation
from bench.errors import ConfigError
from bench.method import LossInputs
from bench.registry import METHODS

GOLDEN = {  # RepDistiller distiller_zoo, b84f547, float64
    "at": 0.14800693768805828,  # sum(Attention()(s, t))
    "sp": 0.061398673510427666,  # Similarity()([s3], [t3])
    "nst": 1.2488394702630083,  # sum(NSTLoss()(s, t))
    "pkt": 0.17516376770204356,  # PKT()(e_s, e_t)
    "rkd": 12.144545434998854,  # RKDLoss()(e_s, e_t), w_d = 25, w_a = 50
    "cc": 70.17953624059555,  # Correlation()(LinearEmbed(5,128)(e_s), LinearEmbed(7,128)(e_t)), weights set below
    "vid": 2.5111226222545677,  # sum over stages of VIDLoss(c_s, c_t, c_t)(s, t), conv weights set below
    "kdsvd": 0.16712287404228657,  # sum(KDSVD()(s_equal_channels, t)), k = 1
}


def fixed(shape, phase, scale=0.37):
    """A deterministic tensor independent of any random generator: sin(0.37 i + phase), reshaped."""
    return torch.sin(torch.arange(math.prod(shape), dtype=torch.float64) * scale + phase).reshape(shape)


def stage_maps():
    """Post-ReLU-like student and teacher stage maps (B = 4); channels differ, and stage 3 differs
    spatially (the teacher's 2x2 against the student's 4x4: the pooling path)."""
    s = [fixed((4, 3, 8, 8), 0.1).relu(), fixed((4, 5, 4, 4), 0.7).relu(), fixed((4, 6, 4, 4), 1.3).relu()]
    t = [fixed((4, 4, 8, 8), 0.4, 0.23).relu(), fixed((4, 6, 4, 4), 0.2, 0.29).relu(),
         fixed((4, 8, 2, 2), 2.1, 0.31).relu()]
    return s, t


def embeddings():
    return fixed((6, 5), 0.3), fixed((6, 7), 1.1, 0.53)


def inputs_for(student: dict, teacher: dict) -> LossInputs:
    return LossInputs(student, teacher, None, {"ce": torch.tensor(0.25, dtype=torch.float64)})


def stage_inputs(s, t) -> LossInputs:
    return inputs_for({f"stage{k}": f for k, f in enumerate(s, 1)}, {f"stage{k}": f for k, f in enumerate(t, 1)})


def embedding_inputs() -> LossInputs:
    e_s, e_t = embeddings()
    return inputs_for({"embedding": e_s}, {"embedding": e_t})


def shapes(features: dict) -> dict:
    return {k: v.shape for k, v in features.items()}


def check(terms: dict, name: str, value: float) -> None:
    assert set(terms) == {"ce", name}
    assert terms["ce"].item() == 0.25  # CE weight 1
    assert terms[name].item() == pytest.approx(value, rel=1e-10, abs=1e-12)


def test_at_matches_repdistiller():
    s, t = stage_maps()
    check(AttentionTransfer(beta=1.0).losses(stage_inputs(s, t), None), "at", GOLDEN["at"])
    assert AttentionTransfer().losses(stage_inputs(s, t), None)["at"].item() == pytest.approx(1000 * GOLDEN["at"])


def test_sp_matches_repdistiller():
    s, t = stage_maps()
    inputs = inputs_for({"backbone.out": s[2]}, {"backbone.out": t[2]})
    check(SimilarityPreserving(beta=1.0).losses(inputs, None), "sp", GOLDEN["sp"])


def test_nst_matches_repdistiller():
    s, t = stage_maps()
    check(NeuronSelectivityTransfer(beta=1.0).losses(stage_inputs(s, t), None), "nst", GOLDEN["nst"])


def test_pkt_matches_repdistiller():
    check(ProbabilisticKT(beta=1.0).losses(embedding_inputs(), None), "pkt", GOLDEN["pkt"])


def test_rkd_matches_repdistiller():
    check(RelationalKD(beta=1.0).losses(embedding_inputs(), None), "rkd", GOLDEN["rkd"])


def test_rkd_terms_separately_weighted():
    inputs = embedding_inputs()
    distance = RelationalKD(angle_weight=0.0).losses(inputs, None)["rkd"]
    angle = RelationalKD(distance_weight=0.0).losses(inputs, None)["rkd"]
    assert (distance + angle).item() == pytest.approx(GOLDEN["rkd"], rel=1e-10)


def test_cc_matches_repdistiller():
    method = CorrelationCongruence(beta=1.0)
    inputs = embedding_inputs()
    extras = method.build_extras(shapes(inputs.student), shapes(inputs.teacher)).double()
    for side, phase in (("student", 0.5), ("teacher", 0.9)):  # the reference's LinearEmbed weights
        linear = extras[side]
        linear.weight.data = fixed(tuple(linear.weight.shape), phase, 0.11) * 0.3
        linear.bias.data = fixed(tuple(linear.bias.shape), phase + 1, 0.17) * 0.1
    assert linear.weight.shape == (128, 7)
    check(method.losses(inputs, extras), "cc", GOLDEN["cc"])


def test_vid_matches_repdistiller():
    s, t = stage_maps()
    method = VariationalInformationDistillation(beta=1.0)
    inputs = stage_inputs(s, t)
    extras = method.build_extras(shapes(inputs.student), shapes(inputs.teacher)).double()
    for k, vid in enumerate(extras):
        convs = [m for m in vid.regressor if isinstance(m, torch.nn.Conv2d)]
        assert [c.weight.shape[:2] for c in convs] == [(t[k].shape[1], s[k].shape[1]), (t[k].shape[1],) * 2,
                                                      (t[k].shape[1],) * 2]
        for j, conv in enumerate(convs):
            conv.weight.data = fixed(tuple(conv.weight.shape), 0.2 * k + j, 0.41) * 0.5
        # the initial value at float64 (the float32 parameter rounds it at 1e-8 relative)
        vid.log_scale.data = torch.full_like(vid.log_scale, math.log(math.expm1(5.0 - 1e-5)))
    check(method.losses(inputs, extras), "vid", GOLDEN["vid"])


def test_vid_initial_variance():
    method = VariationalInformationDistillation()
    s, t = stage_maps()
    extras = method.build_extras(shapes(stage_inputs(s, t).student), shapes(stage_inputs(s, t).teacher))
    var = torch.nn.functional.softplus(extras[0].log_scale) + 1e-5
    assert torch.allclose(var, torch.full_like(var, 5.0))


def test_kdsvd_matches_repdistiller():
    _, t = stage_maps()
    s = [fixed((4, 4, 8, 8), 0.1).relu(), fixed((4, 6, 4, 4), 0.7).relu(), fixed((4, 8, 2, 2), 1.3).relu()]
    method = KDSVD(beta=1.0)
    inputs = stage_inputs(s, t)
    assert method.build_extras(shapes(inputs.student), shapes(inputs.teacher)) is None  # equal channels
    check(method.losses(inputs, None), "kdsvd", GOLDEN["kdsvd"])


def test_kdsvd_adapts_unequal_channels_and_keeps_gradients_finite():
    s, t = stage_maps()
    method = KDSVD()
    inputs = stage_inputs([f.float().requires_grad_() for f in s], [f.float() for f in t])
    extras = method.build_extras(shapes(inputs.student), shapes(inputs.teacher))
    assert sorted(extras) == ["stage1", "stage2", "stage3"]
    loss = method.losses(inputs, extras)["kdsvd"]
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(f.grad).all() for f in inputs.student.values())
    # a degenerate (constant) map: repeated zero singular values, still finite
    flat = {k: torch.ones_like(v).requires_grad_() for k, v in inputs.student.items()}
    loss = method.losses(inputs_for(flat, inputs.teacher), extras)["kdsvd"]
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(f.grad).all() for f in flat.values())


def test_match_spatial_pools_the_larger_map():
    a, b = torch.ones(2, 3, 8, 8), torch.ones(2, 5, 4, 2)
    a2, b2 = match_spatial(a, b)
    assert a2.shape == (2, 3, 4, 2) and b2 is b


def test_stage_count_sets_the_feature_points():
    assert AttentionTransfer(stages=4).student_features == ("stage1", "stage2", "stage3", "stage4")
    assert NeuronSelectivityTransfer().teacher_features == ("stage1", "stage2", "stage3")
    with pytest.raises(ConfigError):
        AttentionTransfer(stages=2.5)
    with pytest.raises(ConfigError):
        KDSVD(stages=1)  # relations between consecutive stages need two


@pytest.mark.parametrize("name,beta", [("at", 1000.0), ("sp", 3000.0), ("cc", 0.02), ("pkt", 30000.0),
                                       ("nst", 50.0), ("rkd", 1.0), ("vid", 1.0), ("kdsvd", 1.0)])
def test_registered_with_the_crd_table_weights(name, beta):
    cls = METHODS.get(name)
    assert cls.defaults["beta"] == beta
    assert cls.tasks == ("classification",)
