"""FGFI imitation mask and loss (Wang et al., CVPR 2019) against hand-worked examples."""

import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from tasks.detection.imitation import imitation_loss, imitation_mask


def torchvision_anchors(sizes, hw, stride):
    """Anchors of one level exactly as torchvision's AnchorGenerator lays them out."""
    generator = AnchorGenerator(sizes=(tuple(sizes),), aspect_ratios=((1.0,),))
    height, width = hw
    images = ImageList(torch.zeros(1, 3, height * stride, width * stride), [(height * stride, width * stride)])
    return generator(images, [torch.zeros(1, 1, height, width)])[0]


# 3x3 feature map, stride 8 (24x24 image), A = 1: one 16x16 anchor centred on (8x, 8y).
# Location (y, x) -> anchor [8x-8, 8y-8, 8x+8, 8y+8], listed y-major then x.
ANCHORS_A1 = torch.tensor([
    [-8, -8, 8, 8], [0, -8, 16, 8], [8, -8, 24, 8],
    [-8, 0, 8, 16], [0, 0, 16, 16], [8, 0, 24, 16],
    [-8, 8, 8, 24], [0, 8, 16, 24], [8, 8, 24, 24],
], dtype=torch.float32)

# G1 = [0, 0, 16, 20] (16x20, area 320). IoU with each location's anchor (area 256):
#   (0,0) 64/512 = 1/8    (0,1) 128/448 = 2/7   (0,2) 1/8
#   (1,0) 128/448 = 2/7   (1,1) 256/320 = 4/5   (1,2) 2/7
#   (2,0) 96/480 = 1/5    (2,1) 192/384 = 1/2   (2,2) 1/5
# max 0.8, so F = 0.8·psi.
G1 = torch.tensor([[0.0, 0.0, 16.0, 20.0]])
# G2 = [8, 8, 24, 24] = anchor (2,2). IoU:
#   (0,0) 0   (0,1) 0     (0,2) 0 (edge contact only)
#   (1,0) 0   (1,1) 1/7   (1,2) 128/384 = 1/3
#   (2,0) 0   (2,1) 1/3   (2,2) 1
G2 = torch.tensor([[8.0, 8.0, 24.0, 24.0]])


def mask_a1(boxes, psi):
    return imitation_mask(boxes, ANCHORS_A1, (3, 3), 1, psi=psi)


def test_literal_anchors_follow_torchvision_order():
    assert torch.equal(torchvision_anchors([16], (3, 3), 8), ANCHORS_A1)
    assert torch.equal(torchvision_anchors([8, 16], (2, 2), 8), ANCHORS_A2)


@pytest.mark.parametrize("psi, expected", [
    # F = 0.4: 4/5 and 1/2 pass
    (0.5, [[0, 0, 0],
           [0, 1, 0],
           [0, 1, 0]]),
    # F = 0.24: 2/7 = 0.286 passes too
    (0.3, [[0, 1, 0],
           [1, 1, 1],
           [0, 1, 0]]),
    # F = 0.16: 1/5 passes too, 1/8 not
    (0.2, [[0, 1, 0],
           [1, 1, 1],
           [1, 1, 1]]),
    # F = 0.792: only the best location
    (0.99, [[0, 0, 0],
            [0, 1, 0],
            [0, 0, 0]]),
])
def test_hand_worked_mask_one_anchor(psi, expected):
    mask = mask_a1([G1], psi)
    assert mask.shape == (1, 3, 3) and mask.dtype == torch.float32
    assert torch.equal(mask, torch.tensor([expected], dtype=torch.float32))


def test_union_over_boxes_is_binary():
    # psi 0.5: G1 -> (1,1), (2,1); G2 (F = 0.5) -> (2,2)
    assert torch.equal(mask_a1([torch.cat([G1, G2])], 0.5)[0], torch.tensor([[0., 0, 0], [0, 1, 0], [0, 1, 1]]))
    # psi 0.3: G1 -> the cross; G2 (F = 0.3) -> (1,2), (2,1), (2,2); (1,2) and (2,1) are in both, still 1
    both = mask_a1([torch.cat([G1, G2])], 0.3)[0]
    assert torch.equal(both, torch.tensor([[0., 1, 0], [1, 1, 1], [0, 1, 1]]))
    assert both.max() == 1


def test_batch_with_an_empty_image():
    mask = mask_a1([G1, torch.zeros(0, 4), torch.cat([G1, G2])], 0.5)
    assert mask.shape == (3, 3, 3)
    assert torch.equal(mask[0], torch.tensor([[0., 0, 0], [0, 1, 0], [0, 1, 0]]))
    assert torch.equal(mask[1], torch.zeros(3, 3))
    assert torch.equal(mask[2], torch.tensor([[0., 0, 0], [0, 1, 0], [0, 1, 1]]))
    assert torch.equal(mask_a1([torch.zeros(0, 4)], 0.5), torch.zeros(1, 3, 3))


def test_threshold_is_strict():
    # G3 = [16, 16, 24, 24]: IoU 64/256 = 1/4 with anchor (2,2); every other anchor only touches it
    # (IoU exactly 0). psi = 0 gives F = 0, and 0 > 0 is false.
    g3 = torch.tensor([[16.0, 16.0, 24.0, 24.0]])
    expected = torch.zeros(1, 3, 3)
    expected[0, 2, 2] = 1
    assert torch.equal(mask_a1([g3], 0.0), expected)
    with pytest.raises(ValueError):
        mask_a1([g3], 1.0)


# 2x2 feature map, stride 8 (16x16 image), A = 2: an 8x8 then a 16x16 anchor at each location.
ANCHORS_A2 = torch.tensor([
    [-4, -4, 4, 4], [-8, -8, 8, 8],     # (0,0)
    [4, -4, 12, 4], [0, -8, 16, 8],     # (0,1)
    [-4, 4, 4, 12], [-8, 0, 8, 16],     # (1,0)
    [4, 4, 12, 12], [0, 0, 16, 16],     # (1,1)
], dtype=torch.float32)
# G = [4, 4, 12, 12] (8x8). IoU (small anchor, big anchor):
#   (0,0) 0, 16/304 = 1/19     (0,1) 0, 32/288 = 1/9
#   (1,0) 0, 1/9               (1,1) 1, 64/256 = 1/4
# The small anchors of (0,0), (0,1), (1,0) only touch G, so those locations can only be
# positive through their big anchor.
G_A2 = torch.tensor([[4.0, 4.0, 12.0, 12.0]])


@pytest.mark.parametrize("psi, expected", [
    (0.5, [[0, 0], [0, 1]]),     # F = 0.5
    (0.2, [[0, 0], [0, 1]]),     # F = 0.2: the big anchor of (1,1) passes too, same location
    (0.1, [[0, 1], [1, 1]]),     # F = 0.1: 1/9 passes (big anchors only)
    (0.05, [[1, 1], [1, 1]]),    # F = 0.05: 1/19 = 0.053 passes
])
def test_hand_worked_mask_two_anchors(psi, expected):
    # psi = 0.5 would read [[0, 0], [1, 1]] if the anchors were taken anchor-major (A, H, W).
    mask = imitation_mask([G_A2], ANCHORS_A2, (2, 2), 2, psi=psi)
    assert torch.equal(mask, torch.tensor([expected], dtype=torch.float32))


def brute_force_mask(boxes, anchors, hw, num_anchors, psi):
    """Straight transcription of the definition, one anchor at a time."""
    height, width = hw
    mask = torch.zeros(height, width)

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    for box in boxes.tolist():
        ious = [iou(box, a) for a in anchors.tolist()]
        threshold = psi * max(ious)
        for y in range(height):
            for x in range(width):
                first = (y * width + x) * num_anchors
                if any(v > threshold for v in ious[first:first + num_anchors]):
                    mask[y, x] = 1
    return mask


def test_matches_the_definition_on_a_non_square_multi_anchor_level():
    generator = AnchorGenerator(sizes=((16, 32),), aspect_ratios=((0.5, 1.0, 2.0),))
    height, width, stride = 5, 7, 8
    images = ImageList(torch.zeros(1, 3, height * stride, width * stride), [(height * stride, width * stride)])
    anchors = generator(images, [torch.zeros(1, 1, height, width)])[0]
    num_anchors = generator.num_anchors_per_location()[0]
    assert anchors.shape == (height * width * num_anchors, 4)
    gen = torch.Generator().manual_seed(0)
    boxes = []
    for k in (1, 2, 3):
        xy = torch.rand(k, 2, generator=gen) * torch.tensor([width * stride - 10.0, height * stride - 10.0])
        wh = 6 + torch.rand(k, 2, generator=gen) * 30
        boxes.append(torch.cat([xy, xy + wh], dim=1))
    for psi in (0.3, 0.5, 0.7):
        mask = imitation_mask(boxes, anchors, (height, width), num_anchors, psi=psi)
        assert mask.shape == (3, height, width)
        for b, image_boxes in enumerate(boxes):
            assert torch.equal(mask[b], brute_force_mask(image_boxes, anchors, (height, width), num_anchors, psi))
        assert mask.sum() > 0


def test_anchor_count_is_checked():
    with pytest.raises(ValueError):
        imitation_mask([G1], ANCHORS_A1, (3, 3), 2)


# Loss: B = 1, C = 2, H = W = 2.
S = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]],
                   [[1.0, 1.0], [1.0, 1.0]]]])
T = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]],
                   [[0.0, 0.0], [0.0, 3.0]]]])
MASK = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
# squared differences, channel 0: [[1, 4], [9, 16]]; channel 1: [[1, 1], [1, 4]]
# masked sum: (1 + 16) + (1 + 4) = 22; N_p = 2 positions (not 4 = positions x channels)
# loss = 22 / (2 * 2) = 5.5


def test_loss_matches_the_formula_by_hand():
    loss = imitation_loss(S, T, MASK)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(5.5)
    assert loss.item() != pytest.approx(22 / (2 * 4))  # channels must not enter N_p


def test_loss_normalises_by_positions_over_the_whole_batch():
    # two images, image 1 has all-zero mask and large errors that must not count;
    # N_p = 2 + 0 = 2 -> same 5.5
    s = torch.cat([S, S + 100])
    t = torch.cat([T, T])
    mask = torch.cat([MASK, torch.zeros(1, 2, 2)])
    assert imitation_loss(s, t, mask).item() == pytest.approx(5.5)
    # image 1 fully on: adds 4 positions, sum over its 8 elements of (s+100-t)^2
    mask[1] = 1
    extra = ((S + 100 - T) ** 2).sum().item()   # (101²+102²+103²+104²) + (3·101² + 98²) = 42030 + 40207
    assert extra == 82237.0
    assert imitation_loss(s, t, mask).item() == pytest.approx((22 + 82237) / (2 * 6))


def test_all_ones_mask_is_the_full_map_hint():
    # all squared differences: 30 + 7 = 37; N_p = B·H·W = 4 -> 37 / 8 = 4.625
    ones = torch.ones(1, 2, 2)
    assert imitation_loss(S, T, ones).item() == pytest.approx(4.625)
    s = torch.randn(3, 5, 4, 6, generator=torch.Generator().manual_seed(1))
    t = torch.randn(3, 5, 4, 6, generator=torch.Generator().manual_seed(2))
    full_hint = 0.5 * ((s - t) ** 2).sum(dim=1).mean()
    assert imitation_loss(s, t, torch.ones(3, 4, 6)).item() == pytest.approx(full_hint.item(), rel=1e-6)


def test_gradient_reaches_the_student_only():
    s = S.clone().requires_grad_(True)
    t = T.clone().requires_grad_(True)
    imitation_loss(s, t, MASK).backward()
    assert t.grad is None
    # d/ds = mask · (s - t) / N_p = mask · (s - t) / 2
    expected = torch.tensor([[[[0.5, 0.0], [0.0, 2.0]],
                              [[0.5, 0.0], [0.0, -1.0]]]])
    assert torch.allclose(s.grad, expected)


def test_empty_mask_gives_a_zero_that_keeps_the_graph():
    s = S.clone().requires_grad_(True)
    loss = imitation_loss(s, T, torch.zeros(1, 2, 2))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(s.grad, torch.zeros_like(S))


def test_shapes_are_checked():
    with pytest.raises(ValueError):
        imitation_loss(S, T[:, :1], MASK)
    with pytest.raises(ValueError):
        imitation_loss(S, T, torch.ones(1, 3, 3))
