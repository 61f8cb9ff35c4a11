"""How a zoo model is registered: a factory in ``MODELS`` that carries its feature points.

Every factory is called as ``factory(num_classes=N)`` and returns a module whose
``forward`` gives logits only. Its ``feature_points`` attribute maps the
feature-point names methods ask for to module paths in that model, and
:meth:`tasks.classification.task.ClassificationTask.feature_points` reads it, so
no method and no task names a module path of a particular architecture.

The names follow RepDistiller's ``is_feat`` list ``[f0, f1, ..., fN, pooled]``
(HobbitLong/RepDistiller ``models/*.py``): ``stem`` is ``f0``, ``stage<k>`` is
``f<k>`` (the post-activation output of stage k), ``backbone.out`` is the last
stage's output (the same tensor as ``stage<N>``), and ``embedding`` is the pooled
vector that feeds the classifier. ``stage<k>.preact`` is what the reference returns
for ``is_feat=True, preact=True`` (the stage's output before its last ReLU; AB and
ReviewKD read it): where that tensor is no module's output (the sum of a residual
block), the block passes it through a :class:`PreActivation` marker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from torch import nn

from bench.registry import MODELS


class PreActivation(nn.Identity):
    """A marker with no parameters on the tensor a block's last ReLU reads, so that a forward hook
    records it (``stage<k>.preact``); the state dict and the arithmetic are unchanged. The ReLU after
    it must not be in place, or the recorded tensor would be overwritten."""


def stage_points(stem: str, stages: Sequence[str], embedding: str,
                 preacts: Sequence[str] = ()) -> Mapping[str, str]:
    """Feature points of a model whose stem, stages (in order) and pooled vector are the given modules;
    ``preacts`` are the modules whose outputs are the stages' pre-activations (``stage<k>.preact``)."""
    if preacts and len(preacts) != len(stages):
        raise ValueError(f"{len(preacts)} pre-activation points for {len(stages)} stages")
    points = {"stem": stem}
    points.update({f"stage{k}": path for k, path in enumerate(stages, start=1)})
    points.update({f"stage{k}.preact": path for k, path in enumerate(preacts, start=1)})
    points["backbone.out"] = stages[-1]
    points["embedding"] = embedding
    return MappingProxyType(points)


def register(name: str, build: Callable[[int], nn.Module], points: Mapping[str, str], doc: str,
             default_classes: int = 100) -> None:
    """Register ``name`` in ``MODELS`` as ``factory(num_classes)`` -> ``build(num_classes)``,
    with ``points`` as the factory's ``feature_points``."""

    def factory(num_classes: int = default_classes) -> nn.Module:
        return build(num_classes)

    factory.__doc__ = doc
    factory.__name__ = factory.__qualname__ = name
    factory.feature_points = points
    MODELS.register(name)(factory)
