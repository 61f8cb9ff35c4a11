"""DKD and DIST against their reference implementations' values on fixed tensors.

The golden numbers were computed by running the reference code on these tensors (float64):
- DKD: megvii-research/mdistiller ``mdistiller/distillers/DKD.py`` ``dkd_loss`` at commit
  a08d46f10d6102bd6e3f258ca5ac880b020ea259;
- DIST: hunto/image_classification_sota ``lib/models/losses/dist_kd.py`` ``DIST(beta, gamma, tau)``
  at commit 6f7a70a1dd57fd88413d83909d3d53243068f701 (the classification submodule of hunto/DIST_KD).
"""

import pytest
import torch

from baselines.dist import DIST, dist_terms
from baselines.dkd import DKD, dkd_terms
from bench.errors import ConfigError
from bench.method import DataInfo, LossInputs

STUDENT = [[1.0, 2.0, 3.0, -0.5], [0.5, -1.0, 2.0, 1.5], [0.2, 0.1, -0.3, 0.0]]
TEACHER = [[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, -1.0, 2.0], [1.0, -2.0, 0.5, 0.3]]
TARGETS = [2, 0, 3]

# dkd_loss(S, T, y, alpha, beta, temperature)
DKD_DEFAULT = 8.384389337934888  # alpha 1, beta 8, T 4
DKD_TCKD = 0.2692742107199317  # alpha 1, beta 0, T 4
DKD_NCKD = 1.0143893909018695  # alpha 0, beta 1, T 4
DKD_T1 = 0.7577252206533154  # alpha 2, beta 0.5, T 1
# DIST(beta, gamma, tau)(S, T)
DIST_DEFAULT = 33.666725043596784  # 1, 1, 4
DIST_INTER = 17.267929170106765  # 1, 0, 4
DIST_INTRA = 16.398795873490023  # 0, 1, 4
DIST_TAU1 = 2.2156202914519882  # 1, 1, 1


def tensors():
    return (torch.tensor(STUDENT, dtype=torch.float64), torch.tensor(TEACHER, dtype=torch.float64),
            torch.tensor(TARGETS))


def loss_inputs():
    s, t, y = tensors()
    return LossInputs({"logits": s}, {"logits": t}, y, {"ce": torch.nn.functional.cross_entropy(s, y)})


def test_dkd_terms_match_mdistiller():
    s, t, y = tensors()
    tckd, nckd = dkd_terms(s, t, y, 4.0)
    assert tckd.item() == pytest.approx(DKD_TCKD, rel=1e-12)
    assert nckd.item() == pytest.approx(DKD_NCKD, rel=1e-12)
    assert (tckd + 8 * nckd).item() == pytest.approx(DKD_DEFAULT, rel=1e-12)
    tckd, nckd = dkd_terms(s, t, y, 1.0)
    assert (2 * tckd + 0.5 * nckd).item() == pytest.approx(DKD_T1, rel=1e-12)


def bound_dkd(epochs=240, steps_per_epoch=10, **hparams):
    method = DKD(**hparams)
    method.bind_data(DataInfo(num_samples=100, num_classes=4, steps_per_epoch=steps_per_epoch, epochs=epochs))
    return method


def test_dkd_warm_up_follows_mdistiller_epochs():
    """min(epoch / 20, 1) with epoch counted from 1, at 240 epochs; the same share of a shorter run."""
    method = bound_dkd()
    assert method.losses(loss_inputs(), None)["dkd"].item() == pytest.approx(DKD_DEFAULT / 20, rel=1e-12)
    method.after_step(9)  # still epoch 1
    assert method.warmup_factor() == pytest.approx(1 / 20)
    method.after_step(10)  # the next step is epoch 2's first
    assert method.warmup_factor() == pytest.approx(2 / 20)
    method.after_step(199)
    assert method.warmup_factor() == 1.0
    assert method.losses(loss_inputs(), None)["dkd"].item() == pytest.approx(DKD_DEFAULT, rel=1e-12)
    assert method.losses(loss_inputs(), None)["ce"].item() == pytest.approx(loss_inputs().task_losses["ce"].item())
    short = bound_dkd(epochs=24)  # W = 24 * 20 / 240 = 2 epochs
    assert short.warmup_factor() == pytest.approx(0.5)
    assert bound_dkd(warmup_epochs=0).warmup_factor() == 1.0
    assert bound_dkd(warmup_epochs=4).warmup_factor() == pytest.approx(0.25)


def test_dkd_needs_the_schedule():
    with pytest.raises(ConfigError, match="bind_data"):
        DKD().losses(loss_inputs(), None)


def test_dist_terms_match_the_authors_code():
    s, t, _ = tensors()
    inter, intra = dist_terms(s, t, 4.0)
    assert inter.item() == pytest.approx(DIST_INTER, rel=1e-12)
    assert intra.item() == pytest.approx(DIST_INTRA, rel=1e-12)
    assert sum(dist_terms(s, t, 1.0)).item() == pytest.approx(DIST_TAU1, rel=1e-12)
    terms = DIST().losses(loss_inputs(), None)
    assert terms["dist"].item() == pytest.approx(2.0 * DIST_DEFAULT, rel=1e-12)  # kd_loss_weight 2 (CIFAR)
    assert DIST(weight=1.0, gamma=0.0).losses(loss_inputs(), None)["dist"].item() == pytest.approx(DIST_INTER)


def test_dist_is_zero_for_a_perfectly_correlated_student():
    """Logits that give the teacher's softmax give no loss (up to the reference's eps = 1e-8 in rho)."""
    _, t, _ = tensors()
    inter, intra = dist_terms(t + 3.0, t, 4.0)
    assert inter.item() == pytest.approx(0.0, abs=1e-4)
    assert intra.item() == pytest.approx(0.0, abs=1e-4)
