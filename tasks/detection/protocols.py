"""Detection protocols on the generated ``scenes`` dataset (64x64 images, 6 classes).

``detection-smoke`` takes seconds (tests and CI). ``detection-mini`` is not
registered yet: it is still being calibrated (teacher vs baseline, >= 5 AP).
"""

from __future__ import annotations

from bench.protocol import Protocol, Schedule, TeacherRecipe
from bench.registry import PROTOCOLS

METRICS = ("map", "map50", "map75", "map_small", "map_medium", "map_large")


@PROTOCOLS.register("detection-smoke")
def detection_smoke() -> Protocol:
    """Seconds-long run for tests and the CI regression gate."""
    return Protocol(
        name="detection-smoke", task="detection", tier="smoke", version=1,
        dataset={"name": "scenes", "train_images": 64, "val_images": 16, "test_images": 32, "seed": 0},
        student="retinanet_fpn_6",
        teacher=TeacherRecipe(model="retinanet_fpn_16", schedule=Schedule(epochs=2, batch_size=16, lr=0.01)),
        schedule=Schedule(epochs=2, batch_size=16, lr=0.01),
        augmentation="hflip", metrics=METRICS, primary_metric="map", seeds=(0, 1),
        description="scenes, 64 training images, 2 epochs: exercises every layer in seconds; "
                    "too short to rank methods.",
    )
