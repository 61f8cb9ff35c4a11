"""The segmentation methods against their formulas on fixed tensors, and the holistic game's two steps."""

import copy

import pytest
import torch

from baselines.cwd import ChannelWiseKD
from baselines.intra_kd import IntraKD
from baselines.skd_pi import SKDPixel
from baselines.skd_pi_pa import SKDPixelPair
from baselines.skd_pi_pa_ho import SKDHolistic
from bench.method import LossInputs
from tasks.segmentation.losses import channel_wise_kd, intra_kd, pairwise_kd, pixelwise_kd


def fixed_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    student = {"logits.low": torch.randn(2, 3, 4, 4, generator=g, requires_grad=True),
               "psp.out": torch.randn(2, 5, 4, 4, generator=g, requires_grad=True),
               "logits": torch.randn(2, 3, 16, 16, generator=g)}
    teacher = {"logits.low": torch.randn(2, 3, 4, 4, generator=g), "psp.out": torch.randn(2, 8, 4, 4, generator=g)}
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, 8:] = 1
    labels[:, :, 12:] = 2
    return LossInputs(student, teacher, labels, {"ce": torch.tensor(1.25)})


def test_skd_pixel_is_eighty_times_the_batch_mean_pixelwise_kl():
    inputs = fixed_inputs()
    terms = SKDPixel().losses(inputs, None)
    assert terms["ce"].item() == 1.25
    expected = 80 * pixelwise_kd(inputs.student["logits.low"], inputs.teacher["logits.low"])
    torch.testing.assert_close(terms["pixel"], expected)


def test_skd_pixel_has_the_authors_weight_relative_to_ce():
    """The authors' term is 10 x (sum over the 8 images of a batch of the pixel cross-entropy / (W H)),
    next to a CE averaged over images: on the same batch of 8, the project's term has its gradient."""
    g = torch.Generator().manual_seed(4)
    student = torch.randn(8, 5, 6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(8, 5, 6, 6, generator=g, dtype=torch.float64)
    n, c, h, w = student.shape
    authors = 10 * (-(teacher.softmax(1) * student.log_softmax(1))).sum() / (h * w)
    inputs = LossInputs({"logits.low": student}, {"logits.low": teacher}, None, {"ce": torch.tensor(0.0)})
    ours = SKDPixel().losses(inputs, None)["pixel"]
    (grad_authors,) = torch.autograd.grad(authors, student)
    (grad_ours,) = torch.autograd.grad(ours, student)
    torch.testing.assert_close(grad_ours, grad_authors)
    entropy = 10 * (-(teacher.softmax(1) * teacher.log_softmax(1))).sum() / (h * w)
    torch.testing.assert_close(ours + entropy, authors)  # KL = cross-entropy - the teacher's entropy


@pytest.mark.parametrize("hw", [(8, 8), (16, 12), (4, 4)])
def test_discriminator_gives_one_score_per_sample(hw):
    """As the reference D (a 4x4 map into a 4x4 conv): one critic value per sample, so the losses'
    mean and the gradient penalty see the same critic."""
    method = SKDHolistic()
    method.build_extras({"logits.low": torch.Size([2, 3, *hw])}, {})
    assert method.discriminator(torch.randn(2, 3, *hw)).shape == (2, 1, 1, 1)


def test_skd_pair_adds_the_affinity_term():
    inputs = fixed_inputs()
    terms = SKDPixelPair(lambda_pa=0.5).losses(inputs, None)
    torch.testing.assert_close(terms["pair"], 0.5 * pairwise_kd(inputs.student["psp.out"], inputs.teacher["psp.out"]))
    assert set(terms) == {"ce", "pixel", "pair"}


def test_cwd_weights_the_channel_wise_kl():
    inputs = fixed_inputs()
    terms = ChannelWiseKD().losses(inputs, None)
    expected = 3.0 * channel_wise_kd(inputs.student["logits.low"], inputs.teacher["logits.low"], 4.0)
    torch.testing.assert_close(terms["cwd"], expected)


def test_intra_kd_uses_ground_truth_regions():
    inputs = fixed_inputs()
    terms = IntraKD().losses(inputs, None)
    torch.testing.assert_close(terms["intra"], intra_kd(inputs.student["psp.out"], inputs.teacher["psp.out"],
                                                        inputs.targets, 3))
    assert terms["intra"].item() > 0  # three regions, different features


def test_holistic_game_discriminator_step_never_touches_the_student():
    torch.manual_seed(0)
    student = torch.nn.Conv2d(3, 3, 1)  # stands in for the student's last layer
    method = SKDHolistic()
    method.build_extras({"logits.low": torch.Size([2, 3, 8, 8])}, {})
    x = torch.randn(2, 3, 8, 8)
    inputs = fixed_inputs()
    inputs.student["logits.low"] = student(x)
    inputs.teacher["logits.low"] = torch.randn(2, 3, 8, 8)
    inputs.student["psp.out"] = inputs.student["psp.out"].detach()
    terms = method.losses(inputs, None)
    sum(terms.values()).backward()
    student_weights = [p.detach().clone() for p in student.parameters()]
    student_grads = [p.grad.clone() for p in student.parameters()]
    d_before = [p.detach().clone() for p in method.discriminator.parameters()]
    method.after_step(1)
    assert all(torch.equal(a, b) for a, b in zip(student_weights, student.parameters(), strict=True))
    assert all(torch.equal(a, p.grad) for a, p in zip(student_grads, student.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, method.discriminator.parameters(), strict=True))
    assert method.auxiliary_parameters()  # counted as extra parameters


def test_holistic_student_term_is_minus_lambda_times_critic():
    method = SKDHolistic(lambda_d=0.5)
    method.build_extras({"logits.low": torch.Size([2, 3, 8, 8])}, {})
    inputs = fixed_inputs()
    inputs.student["logits.low"] = torch.randn(2, 3, 8, 8)
    inputs.teacher["logits.low"] = torch.randn(2, 3, 8, 8)
    critic = copy.deepcopy(method.discriminator).train()  # a call updates BN and spectral-norm state
    expected = -0.5 * critic(inputs.student["logits.low"]).mean()
    terms = method.losses(inputs, None)
    assert terms["holistic"].item() == pytest.approx(expected.item(), rel=1e-4)
