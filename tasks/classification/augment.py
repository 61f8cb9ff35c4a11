"""The random training augmentations of the paper recipes, drawn per sample from a seed.

* ``crop32pad4-hflip``: zero-pad 4 pixels, take a random 32x32 crop, flip
  horizontally with probability 1/2: torchvision's ``RandomCrop(32, padding=4)``
  then ``RandomHorizontalFlip()``, the CIFAR recipe of He et al. 2016 (section
  4.2) used by RepDistiller's ``cifar100.py`` and thus by the CRD table
  (Tian et al. 2020) and mdistiller.
* ``resizedcrop224-hflip``: a crop of random area (8% to 100%) and aspect ratio
  (3/4 to 4/3), resized to 224x224 (bilinear, antialiased), then the flip:
  ``RandomResizedCrop(224)`` + ``RandomHorizontalFlip()``, the Inception-style
  crop (Szegedy et al. 2015) of torchvision's ImageNet recipe
  (``references/classification``). Its evaluation view (:func:`eval_view`) is
  ``Resize(256)`` (shorter side) then ``CenterCrop(224)``.

Each sample's parameters are drawn from its own ``torch.Generator`` seeded with
the sample's variant (a seed the run's generator drew for it this epoch), so a
run's augmentations are the same in the main process and in any loader worker.
The draws are made in the order torchvision's transforms make them from the
global generator, so after ``torch.manual_seed(s)`` torchvision's pipeline gives
the image that seed ``s`` gives here (``tests/tasks/test_classification_augment.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

CIFAR_CROP, CIFAR_PADDING = 32, 4
IMAGENET_CROP, IMAGENET_RESIZE = 224, 256
#: RandomResizedCrop's defaults: area fraction and aspect ratio (w/h) ranges
AREA_SCALE, ASPECT_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def crop_offsets(generator: torch.Generator, height: int, width: int, size: int) -> tuple[int, int]:
    """Top-left corner ``(i, j)`` of a uniformly random ``size`` x ``size`` crop of a ``height`` x ``width``
    image (no draw when the crop is the whole image)."""
    if height == size and width == size:
        return 0, 0
    i = int(torch.randint(0, height - size + 1, (1,), generator=generator).item())
    j = int(torch.randint(0, width - size + 1, (1,), generator=generator).item())
    return i, j


def flip_drawn(generator: torch.Generator) -> bool:
    """A horizontal flip with probability 1/2."""
    return bool(torch.rand(1, generator=generator).item() < 0.5)


def resized_crop_box(generator: torch.Generator, height: int, width: int, scale: tuple[float, float] = AREA_SCALE,
                     ratio: tuple[float, float] = ASPECT_RATIO) -> tuple[int, int, int, int]:
    """``(i, j, h, w)`` of an Inception-style random crop: up to 10 tries of an area fraction drawn
    uniformly from ``scale`` and an aspect ratio drawn log-uniformly from ``ratio``, kept when the box
    fits; else the largest centred box whose aspect ratio is within ``ratio``."""
    area = height * width
    log_lo, log_hi = torch.tensor(ratio).log().tolist()  # in float32, as torchvision computes them
    for _ in range(10):
        target = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect = torch.empty(1).uniform_(log_lo, log_hi, generator=generator).exp().item()
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, (1,), generator=generator).item())
            j = int(torch.randint(0, width - w + 1, (1,), generator=generator).item())
            return i, j, h, w
    shape = width / height
    if shape < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif shape > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def crop_pad_flip(image: torch.Tensor, generator: torch.Generator, size: int = CIFAR_CROP,
                  padding: int = CIFAR_PADDING) -> torch.Tensor:
    """``RandomCrop(size, padding)`` (zero padding) then ``RandomHorizontalFlip()`` of one (C, H, W) image."""
    padded = F.pad(image, (padding, padding, padding, padding))
    i, j = crop_offsets(generator, padded.shape[-2], padded.shape[-1], size)
    out = padded[..., i : i + size, j : j + size]
    return out.flip(-1) if flip_drawn(generator) else out


def resized_crop_flip(image: torch.Tensor, generator: torch.Generator, size: int = IMAGENET_CROP) -> torch.Tensor:
    """``RandomResizedCrop(size)`` (bilinear, antialiased) then ``RandomHorizontalFlip()`` of one (C, H, W) image."""
    i, j, h, w = resized_crop_box(generator, image.shape[-2], image.shape[-1])
    out = TF.resized_crop(image, i, j, h, w, [size, size], InterpolationMode.BILINEAR, antialias=True)
    return out.flip(-1) if flip_drawn(generator) else out


def resize_center_crop(images: torch.Tensor, resize: int = IMAGENET_RESIZE, crop: int = IMAGENET_CROP) -> torch.Tensor:
    """``Resize(resize)`` (shorter side, bilinear, antialiased) then ``CenterCrop(crop)``, of (..., H, W) images."""
    resized = TF.resize(images, [resize], InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(resized, [crop, crop])


#: random augmentation name -> per-image transform(image, generator)
RANDOM: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "crop32pad4-hflip": crop_pad_flip,
    "resizedcrop224-hflip": resized_crop_flip,
}
#: augmentation name -> the deterministic view evaluation uses (absent: the image as stored)
EVAL: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"resizedcrop224-hflip": resize_center_crop}
#: augmentations whose output size does not depend on the stored image's size
RESIZING = frozenset({"resizedcrop224-hflip"})


def apply_random(images: torch.Tensor | list[torch.Tensor], seeds: torch.Tensor, augmentation: str) -> torch.Tensor:
    """The random augmentation ``augmentation`` of each image, drawn from its seed; stacked (N, C, h, w)."""
    transform = RANDOM[augmentation]
    return torch.stack([transform(image, torch.Generator().manual_seed(int(seed)))
                        for image, seed in zip(images, seeds, strict=True)])


def eval_view(images: torch.Tensor, augmentation: str | None) -> torch.Tensor:
    """What evaluation sees of (N, C, H, W) images under a protocol whose training augmentation is
    ``augmentation``: its :data:`EVAL` transform, or the images unchanged."""
    transform = EVAL.get(augmentation or "")
    return images if transform is None else transform(images)
