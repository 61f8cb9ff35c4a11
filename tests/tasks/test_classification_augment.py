"""The paper recipes' augmentations and normalisation against torchvision's transforms on the same images.

torchvision's random transforms draw from torch's global generator; ours draw the same numbers in the same
order from a per-sample generator, so after ``torch.manual_seed(s)`` torchvision's pipeline must give
exactly the image that seed ``s`` gives here. The random parts are also checked for their distribution.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from bench.protocol import Protocol, get_protocol
from tasks.classification import augment
from tasks.classification.task import ClassificationTask

CIFAR_MEAN_STD = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))  # RepDistiller dataset/cifar100.py


def images(n: int, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, h, w), dtype=np.uint8))


def configured(augmentation: str, normalization=()) -> ClassificationTask:
    """A classification task set up for the smoke protocol with ``augmentation`` and ``normalization``."""
    protocol: Protocol = dataclasses.replace(get_protocol("classification-smoke"), augmentation=augmentation,
                                             normalization=normalization)
    return ClassificationTask().configure(protocol)


# ----------------------------------------------------------------------------- crop32pad4-hflip (CIFAR)

def test_crop_pad_flip_is_torchvisions_random_crop_and_flip_on_tensors_and_pil_images():
    reference = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()])
    pil_reference = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.PILToTensor()])
    batch = images(40)
    for seed, image in enumerate(batch):
        ours = augment.crop_pad_flip(image, torch.Generator().manual_seed(seed))
        torch.manual_seed(seed)
        assert torch.equal(ours, reference(image)), seed
        torch.manual_seed(seed)
        assert torch.equal(ours, pil_reference(Image.fromarray(image.permute(1, 2, 0).numpy()))), seed


def test_crop_offsets_are_torchvisions_get_params():
    padded = torch.zeros(3, 40, 40)
    for seed in range(50):
        torch.manual_seed(seed)
        i, j, h, w = T.RandomCrop.get_params(padded, (32, 32))
        assert augment.crop_offsets(torch.Generator().manual_seed(seed), 40, 40, 32) == (i, j)
    assert augment.crop_offsets(torch.Generator(), 32, 32, 32) == (0, 0)


def test_the_batched_augmentation_is_the_per_sample_one_and_follows_the_seed():
    batch, seeds = images(16), torch.arange(100, 116) * 7919
    task = configured("crop32pad4-hflip")
    out = task.augment(batch, seeds, "crop32pad4-hflip")
    assert out.shape == (16, 3, 32, 32) and out.dtype == torch.uint8
    for k in range(16):
        assert torch.equal(out[k], augment.crop_pad_flip(batch[k], torch.Generator().manual_seed(int(seeds[k]))))
    assert torch.equal(task.augment(batch, seeds, "crop32pad4-hflip"), out)
    assert not torch.equal(task.augment(batch, seeds + 1, "crop32pad4-hflip"), out)


def test_crop_offsets_and_flips_are_uniform():
    """Over 9000 seeds: each of the 9 offsets per axis about 1/9 of the time, flips about 1/2."""
    n = 9000
    rows, cols, flips = Counter(), Counter(), 0
    for seed in range(n):
        g = torch.Generator().manual_seed(seed)
        i, j = augment.crop_offsets(g, 40, 40, 32)
        rows[i] += 1
        cols[j] += 1
        flips += augment.flip_drawn(g)
    assert sorted(rows) == sorted(cols) == list(range(9))
    for counts in (rows, cols):  # chi-square with 8 degrees of freedom: 26.1 is its 0.999 quantile
        assert sum((c - n / 9) ** 2 / (n / 9) for c in counts.values()) < 26.1
    assert abs(flips / n - 0.5) < 3.3 * math.sqrt(0.25 / n)


def test_padding_is_zero_and_the_crop_moves_the_image():
    """A crop at offset (i, j) of the 4-padded image shows pixel (y, x) at (y + 4 - i, x + 4 - j)."""
    image = images(1)[0]
    seen = set()
    for seed in range(60):
        g = torch.Generator().manual_seed(seed)
        i, j = augment.crop_offsets(g, 40, 40, 32)
        flipped = augment.flip_drawn(g)
        out = augment.crop_pad_flip(image, torch.Generator().manual_seed(seed))
        out = out.flip(-1) if flipped else out
        padded = torch.zeros(3, 40, 40, dtype=torch.uint8)
        padded[:, 4:36, 4:36] = image
        assert torch.equal(out, padded[:, i:i + 32, j:j + 32])
        seen.add((i, j))
    assert len(seen) > 20


# ----------------------------------------------------------------------------- resizedcrop224-hflip (ImageNet)

@pytest.mark.parametrize("shape", [(375, 500), (500, 333), (64, 64), (20, 300), (300, 18)])
def test_resized_crop_box_is_torchvisions_get_params(shape):
    """Same boxes as RandomResizedCrop.get_params, including the centre-crop fallback of very long images."""
    h, w = shape
    img = torch.zeros(3, h, w)
    for seed in range(60):
        torch.manual_seed(seed)
        expected = T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
        assert augment.resized_crop_box(torch.Generator().manual_seed(seed), h, w) == expected, seed


def test_resized_crop_flip_is_torchvisions_random_resized_crop_and_flip():
    reference = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip()])
    for seed, image in enumerate(images(6, 120, 90, seed=3)):
        ours = augment.resized_crop_flip(image, torch.Generator().manual_seed(seed))
        torch.manual_seed(seed)
        expected = reference(image)
        assert ours.shape == (3, 224, 224) and torch.equal(ours, expected), seed


def test_resized_crop_boxes_follow_the_inception_distribution():
    """On a 1000x1000 image: area fraction in [0.08, 1], aspect ratio in [3/4, 4/3]. Below half the area
    every aspect ratio fits, so there the first draw is kept: the area is uniform (as many boxes below
    0.29 as between 0.29 and 0.5) and the log aspect ratio symmetric (as many wide boxes as tall ones)."""
    n, small, below, wide, tall = 4000, 0, 0, 0, 0
    for seed in range(n):
        i, j, h, w = augment.resized_crop_box(torch.Generator().manual_seed(seed), 1000, 1000)
        assert 0 <= i <= 1000 - h and 0 <= j <= 1000 - w
        area, log_aspect = h * w / 1e6, math.log(w / h)
        assert 0.079 <= area <= 1.0 and abs(log_aspect) <= math.log(4 / 3) + 0.005
        if area < 0.5:
            small += 1
            below += area < 0.29
            wide += log_aspect > 0.01
            tall += log_aspect < -0.01
    bound = 3.3 * math.sqrt(small) / 2  # 3.3 standard deviations of a fair split of `small` boxes
    assert small > n * 0.4 and abs(below - small / 2) < bound and abs(wide - tall) < 2 * bound


def test_eval_view_is_resize_256_then_center_crop_224():
    reference = T.Compose([T.Resize(256), T.CenterCrop(224)])
    for image in images(3, 300, 410, seed=5):
        assert torch.equal(augment.resize_center_crop(image), reference(image))
    batch = images(4, 96, 128)
    assert torch.equal(augment.eval_view(batch, "resizedcrop224-hflip"), reference(batch))
    assert augment.eval_view(batch, "crop32pad4-hflip") is batch and augment.eval_view(batch, None) is batch


# ----------------------------------------------------------------------------- normalisation and variants

def test_protocol_normalization_is_torchvisions_to_tensor_and_normalize():
    task = configured("crop32pad4-hflip", CIFAR_MEAN_STD)
    reference = T.Compose([T.ToTensor(), T.Normalize(*CIFAR_MEAN_STD)])
    batch = images(5)
    ours = task.prepare(batch)
    for k, image in enumerate(batch):
        assert torch.equal(ours[k], reference(Image.fromarray(image.permute(1, 2, 0).numpy())))


def test_empty_normalization_keeps_the_tasks_default():
    batch = images(2)
    assert torch.equal(configured("hflip").prepare(batch), (batch.float() / 255 - 0.5) / 0.25)
    assert torch.equal(ClassificationTask().prepare(batch), (batch.float() / 255 - 0.5) / 0.25)


def test_random_augmentations_have_no_finite_variant_set():
    task = ClassificationTask()
    assert task.num_augment_variants("crop32pad4-hflip") is None
    assert task.num_augment_variants("resizedcrop224-hflip") is None
    assert (task.num_augment_variants("none"), task.num_augment_variants("hflip")) == (1, 2)


def test_unknown_augmentation_is_refused_when_configured_listing_the_valid_ones():
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="crop32pad4-hflip") as exc:
        configured("randcrop")
    assert "'randcrop'" in str(exc.value) and "resizedcrop224-hflip" in str(exc.value)


def test_train_batches_of_a_random_augmentation_follow_the_run_seed():
    from bench.task import Split

    task = configured("crop32pad4-hflip")
    split = Split(images(12), torch.arange(12) % 3, ("a", "b", "c"))

    def epoch(seed):
        return [b.inputs for b in task.train_batches(split, 4, "crop32pad4-hflip", torch.Generator().manual_seed(seed))]

    a, b, c = epoch(0), epoch(0), epoch(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
