"""Segmentation protocols on the generated ``seg_scenes`` dataset (64x64 images, 9 classes).

Only ``segmentation-smoke`` (seconds, tests and CI) is registered; a ``mini``
protocol is not calibrated yet (teacher vs baseline, >= 5 mIoU).
"""

from __future__ import annotations

from bench.protocol import Protocol, Schedule, TeacherRecipe
from bench.registry import PROTOCOLS


@PROTOCOLS.register("segmentation-smoke")
def segmentation_smoke() -> Protocol:
    """Seconds-long run for tests and the CI regression gate."""
    return Protocol(
        name="segmentation-smoke", task="segmentation", tier="smoke", version=1,
        dataset={"name": "seg_scenes", "train_images": 128, "val_images": 16, "test_images": 32, "seed": 0},
        student="pspnet_6",
        teacher=TeacherRecipe(model="pspnet_16", schedule=Schedule(epochs=2, batch_size=16, lr=0.02)),
        schedule=Schedule(epochs=2, batch_size=16, lr=0.02),
        augmentation="hflip", metrics=("miou", "pixel_acc"), primary_metric="miou", seeds=(0, 1),
        description="seg_scenes, 128 training images, 2 epochs: exercises every layer in seconds; "
                    "too short to rank methods.",
    )
