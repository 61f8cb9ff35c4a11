"""Pose protocols on the generated ``figures`` crops (64x48, 14 keypoints).

Only ``pose-smoke`` (seconds, tests and CI) is registered; a ``mini`` protocol
is not calibrated yet (teacher vs baseline, >= 5 AP).
"""

from __future__ import annotations

from bench.protocol import Protocol, Schedule, TeacherRecipe
from bench.registry import PROTOCOLS


@PROTOCOLS.register("pose-smoke")
def pose_smoke() -> Protocol:
    """Seconds-long run for tests and the CI regression gate."""
    return Protocol(
        name="pose-smoke", task="pose", tier="smoke", version=1,
        dataset={"name": "figures", "train_images": 128, "val_images": 16, "test_images": 32, "seed": 0},
        student="pose_mobilenetv3_small_050",
        teacher=TeacherRecipe(model="pose_mobilenetv3_large_100", schedule=Schedule(epochs=2, batch_size=16, lr=0.02)),
        schedule=Schedule(epochs=2, batch_size=16, lr=0.02),
        augmentation="hflip", metrics=("ap", "ap50", "ap75", "pck"), primary_metric="ap", seeds=(0, 1),
        description="figures, 128 training crops, 2 epochs: exercises every layer in seconds; "
                    "too short to rank methods.",
    )
