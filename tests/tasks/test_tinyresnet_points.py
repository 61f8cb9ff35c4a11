"""The tiny classification family declares RepDistiller's stage points without changing the model."""

from __future__ import annotations

import torch

from bench.distill import FeatureRecorder
from bench.registry import MODELS, TASKS


def test_tinyresnet_stage_points():
    task = TASKS.get("classification")()
    points = task.feature_points("tinyresnet_8")
    assert set(points) == {"stem", "stage1", "stage2", "stage3", "backbone.out", "embedding",
                           "stage1.preact", "stage2.preact", "stage3.preact"}
    torch.manual_seed(0)
    model = MODELS.get("tinyresnet_8")(num_classes=5).eval()
    recorder = FeatureRecorder(model, points)
    with torch.no_grad():
        _, feats = recorder.record(lambda: model(torch.randn(2, 3, 32, 32)))
    shapes = {name: tuple(f.shape) for name, f in feats.items()}
    assert shapes == {"stem": (2, 8, 16, 16), "stage1": (2, 8, 16, 16), "stage2": (2, 16, 8, 8),
                      "stage3": (2, 32, 4, 4), "backbone.out": (2, 32, 4, 4), "embedding": (2, 32),
                      "stage1.preact": (2, 8, 16, 16), "stage2.preact": (2, 16, 8, 8), "stage3.preact": (2, 32, 4, 4)}
    assert torch.equal(feats["stage3"], feats["backbone.out"])
    post = [name for name in feats if name != "embedding" and not name.endswith(".preact")]
    assert all((feats[name] >= 0).all() for name in post)  # post-activation
    for k in (1, 2, 3):  # the pre-activation, recorded before the (not in-place) last ReLU
        assert torch.equal(feats[f"stage{k}.preact"].relu(), feats[f"stage{k}"])


def test_tinyresnet_structure_unchanged():
    """The published records' parameter counts stay valid: the points add no parameter (the
    pre-activation markers are parameter-free ``nn.Identity`` modules inside the blocks)."""
    model = MODELS.get("tinyresnet_8")(num_classes=20)
    assert [name for name, _ in model.named_children()] == ["stem", "stages", "pool", "fc"]
    assert sum(p.numel() for p in model.parameters()) == 20284
