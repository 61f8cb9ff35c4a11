"""FGFI with one imitation threshold per object *and per FPN level*: the ablation of the
cross-level threshold that :mod:`baselines.fgfi` uses (Wang, Yuan, Zhang, Feng, CVPR 2019).

On each level separately, F_g = psi x (g's maximum IoU over that level's anchors), so every
object marks cells on every level, even a level whose anchors it fits badly (a 5-pixel object
on the stride-16 level). The paper imitates a single feature map, where the two readings
coincide; on the pyramid this one imitates far more of the coarse levels (measured coverage in
the README). Everything else is FGFI's.
"""

from __future__ import annotations

from baselines.fgfi import FGFI
from bench.registry import METHODS


@METHODS.register("fgfi-per-level")
class FGFIPerLevel(FGFI):
    """FGFI with each object's threshold taken per FPN level (ablation of the cross-level default)."""

    per_level_threshold = True
