"""Pose heatmaps: Gaussian encoding, log-parabola decoding, round trip and JointsMSELoss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tasks.pose.heatmaps import decode, encode, heatmap_mse

INPUT_HW = (256, 192)
HEATMAP_HW = (64, 48)  # stride 4


def test_encode_gaussian_values_at_integer_location():
    # x=20, y=12 input px -> u=5, v=3 heatmap px (stride 4), so the peak is pixel (row 3, col 5).
    kp = torch.tensor([[[20.0, 12.0, 2.0]]])
    hm, weight = encode(kp, HEATMAP_HW, INPUT_HW, sigma=2.0)
    assert hm.shape == (1, 1, 64, 48) and hm.dtype == torch.float32
    assert weight.tolist() == [[1.0]] and weight.dtype == torch.float32
    assert hm[0, 0, 3, 5].item() == pytest.approx(1.0)
    assert hm.max().item() == pytest.approx(1.0)
    assert hm[0, 0, 3, 6].item() == pytest.approx(math.exp(-1 / 8), rel=1e-6)
    assert hm[0, 0, 5, 7].item() == pytest.approx(math.exp(-8 / 8), rel=1e-6)
    assert hm[0, 0, 0, 0].item() == pytest.approx(math.exp(-(25 + 9) / 8), rel=1e-5)


def test_encode_subpixel_centre():
    # x=22 -> u=5.5: columns 5 and 6 are equal, both exp(-0.25 / 8).
    hm, _ = encode(torch.tensor([[[22.0, 12.0, 1.0]]]), HEATMAP_HW, INPUT_HW, sigma=2.0)
    assert hm[0, 0, 3, 5].item() == pytest.approx(math.exp(-0.25 / 8), rel=1e-6)
    assert hm[0, 0, 3, 6].item() == pytest.approx(hm[0, 0, 3, 5].item(), rel=1e-6)


def test_encode_weights_unlabelled_and_outside():
    kp = torch.tensor([[[20.0, 12.0, 0.0],      # unlabelled
                        [-3.0, 12.0, 2.0],      # u = -0.75: outside
                        [190.0, 12.0, 2.0],     # u = 47.5: outside (pixel 47 covers [46.5, 47.5))
                        [189.0, 254.0, 2.0],    # u = 47.25, v = 63.5: outside
                        [-1.9, 253.9, 1.0]]])   # u = -0.475, v = 63.475: inside
    hm, weight = encode(kp, HEATMAP_HW, INPUT_HW)
    assert weight.tolist() == [[0.0, 0.0, 0.0, 0.0, 1.0]]
    assert hm[0, :4].abs().sum().item() == 0.0
    assert hm[0, 4].max().item() > 0.9


def test_decode_one_hot_and_scaling():
    hm = torch.zeros(2, 1, 64, 48)
    hm[0, 0, 3, 5] = 0.7
    hm[1, 0, 63, 0] = 0.4  # border: no refinement
    coords, scores = decode(hm, INPUT_HW)
    assert coords.shape == (2, 1, 2) and scores.shape == (2, 1)
    assert coords[0, 0].tolist() == pytest.approx([20.0, 12.0])
    assert coords[1, 0].tolist() == pytest.approx([0.0, 252.0])
    assert scores[:, 0].tolist() == pytest.approx([0.7, 0.4])


def test_decode_parabola_on_hand_values():
    # log values along x at cols 4,5,6: log(a), 0, log(b) with a=exp(-1), b=exp(-0.25)
    # -> l = (-1, 0, -0.25): offset = 0.5 * (-1 + 0.25) / (-1 - 0 - 0.25) = 0.3.
    hm = torch.zeros(1, 1, 64, 48)
    hm[0, 0, 10, 4] = math.exp(-1.0)
    hm[0, 0, 10, 5] = 1.0
    hm[0, 0, 10, 6] = math.exp(-0.25)
    hm[0, 0, 9, 5] = hm[0, 0, 11, 5] = 0.5  # symmetric along y: no y offset
    coords, _ = decode(hm, INPUT_HW)
    assert coords[0, 0].tolist() == pytest.approx([(5.3) * 4, 10 * 4], abs=1e-4)


@pytest.mark.parametrize("sigma", [1.5, 2.0, 3.0])
def test_round_trip_subpixel(sigma):
    gen = torch.Generator().manual_seed(0)
    n, k = 8, 13
    xy = torch.rand(n, k, 2, generator=gen, dtype=torch.float64)
    # at least one heatmap pixel (4 input px) inside the border so both neighbours exist
    xy[..., 0] = 4 + xy[..., 0] * (INPUT_HW[1] - 12)
    xy[..., 1] = 4 + xy[..., 1] * (INPUT_HW[0] - 12)
    kp = torch.cat([xy, torch.ones(n, k, 1, dtype=torch.float64)], dim=-1)
    hm, weight = encode(kp, HEATMAP_HW, INPUT_HW, sigma=sigma)
    assert bool((weight == 1).all())
    coords, scores = decode(hm, INPUT_HW)
    error = (coords.double() - xy).abs().max().item()
    assert error < 0.01, error
    # the quantised argmax alone is off by up to half a stride: the refinement matters
    argmax_only = torch.stack([(hm.flatten(2).argmax(-1) % 48) * 4.0, (hm.flatten(2).argmax(-1) // 48) * 4.0], -1)
    assert (argmax_only.double() - xy).abs().max().item() > 1.0
    assert bool((scores > 0.85).all()) and bool((scores <= 1.0).all())


def test_heatmap_mse_matches_simplebaseline_loop_and_hand_value():
    pred = torch.ones(2, 2, 4, 4)
    target = torch.zeros(2, 2, 4, 4)
    weight = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # half of the (n, k) maps count, each pixel error 1: 0.5 * mean = 0.5 * 0.5
    assert heatmap_mse(pred, target, weight).item() == pytest.approx(0.25)

    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(3, 5, 6, 7, generator=gen, requires_grad=True)
    target = torch.rand(3, 5, 6, 7, generator=gen)
    weight = (torch.rand(3, 5, generator=gen) > 0.3).float()
    # reference: SimpleBaseline JointsMSELoss with use_target_weight=True
    criterion = torch.nn.MSELoss(reduction="mean")
    p, t = pred.reshape(3, 5, -1), target.reshape(3, 5, -1)
    ref = sum(0.5 * criterion(p[:, j] * weight[:, j:j + 1], t[:, j] * weight[:, j:j + 1]) for j in range(5)) / 5
    loss = heatmap_mse(pred, target, weight.reshape(3, 5, 1))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    loss.backward()
    assert pred.grad is not None and bool((pred.grad[weight == 0] == 0).all())


def test_encode_accepts_numpy():
    kp = np.array([[[20.0, 12.0, 1.0]]])
    hm, weight = encode(kp, HEATMAP_HW, INPUT_HW)
    assert hm[0, 0, 3, 5].item() == pytest.approx(1.0) and weight.item() == 1.0
