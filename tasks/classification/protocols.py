"""Classification protocols on the generated ``shapes20`` dataset.

``classification-smoke`` takes seconds (tests and CI); ``classification-mini``
is the embedded default, calibrated once (teacher, baseline, KD; see the README)
and then frozen: any change to it must bump ``version``.
"""

from __future__ import annotations

from bench.protocol import Protocol, Schedule, TeacherRecipe
from bench.registry import PROTOCOLS

METRICS = ("top1", "top5")


@PROTOCOLS.register("classification-smoke")
def classification_smoke() -> Protocol:
    """Seconds-long run for tests and the CI regression gate."""
    return Protocol(
        name="classification-smoke", task="classification", tier="smoke", version=1,
        dataset={"name": "shapes20", "train_per_class": 40, "val_per_class": 5, "test_per_class": 20,
                 "label_noise": 0.1, "seed": 0},
        student="tinyresnet_8",
        teacher=TeacherRecipe(model="tinyresnet_24", schedule=Schedule(epochs=4, batch_size=50, lr=0.05)),
        schedule=Schedule(epochs=4, batch_size=50, lr=0.05),
        augmentation="hflip", metrics=METRICS, primary_metric="top1", seeds=(0, 1),
        description="shapes20, 800 training images, 4 epochs: exercises every layer in seconds; "
                    "too short to rank methods.",
    )


@PROTOCOLS.register("classification-mini")
def classification_mini() -> Protocol:
    """The embedded default: minutes on a laptop CPU."""
    return Protocol(
        name="classification-mini", task="classification", tier="mini", version=1,
        dataset={"name": "shapes20", "train_per_class": 200, "val_per_class": 25, "test_per_class": 100,
                 "label_noise": 0.1, "seed": 0},
        student="tinyresnet_12",
        teacher=TeacherRecipe(model="tinyresnet_32", schedule=Schedule(epochs=20, batch_size=64, lr=0.05)),
        schedule=Schedule(epochs=20, batch_size=64, lr=0.05),
        augmentation="hflip", metrics=METRICS, primary_metric="top1", seeds=(0, 1, 2),
        description="shapes20, 4000 training images with 10% label noise, 20 epochs; "
                    "teacher tinyresnet_32 (12.0 M MACs), student tinyresnet_12 (1.7 M MACs).",
    )
