"""Share of feature cells the FGFI imitation mask covers per FPN level, for `fgfi` (one threshold per
object across levels) and `fgfi-per-level` (one per object and level), on a detection protocol's training
split without augmentation: `python tests/benchmarks/fgfi_mask_coverage.py [PROTOCOL]` (default
detection-mini). The README quotes its output.
"""
import sys

import torch
from baselines.fgfi import LEVELS
from bench.method import LossInputs
from bench.protocol import get_protocol
from bench.registry import METHODS, TASKS

protocol = get_protocol(sys.argv[1] if len(sys.argv) > 1 else "detection-mini")
task = TASKS.get("detection")()
train = task.load_splits(protocol.dataset)["train"]
for name in ("fgfi", "fgfi-per-level"):
    method, covered, cells = METHODS.get(name)(), dict.fromkeys(LEVELS, 0.0), dict.fromkeys(LEVELS, 0)
    for start in range(0, len(train), 64):
        idx = torch.arange(start, min(start + 64, len(train)))
        batch = task.collate(train, idx, torch.zeros_like(idx), "none")
        frame_hw, _ = task.detector_frame(batch.inputs, batch.targets)
        strides = zip(LEVELS, (4, 8, 16), strict=True)
        feats = {lvl: torch.zeros(len(idx), 1, frame_hw[0] // s, frame_hw[1] // s) for lvl, s in strides}
        masks = method.masks(LossInputs(feats, feats, batch.targets, {}, task, batch.inputs), feats)
        for lvl in LEVELS:
            covered[lvl] += masks[lvl].sum().item()
            cells[lvl] += masks[lvl].numel()
    print(name, {lvl: f"{100 * covered[lvl] / cells[lvl]:.1f}%" for lvl in LEVELS})
