"""The method contract on the full CIFAR-100 protocols' smoke variants: the CRD-table models themselves.

The smoke protocols run the tiny family; the full tier runs the CIFAR-100 zoo, whose stage counts,
pre-activation points and map sizes differ (vgg, MobileNetV2 and ResNet50 have four stages). Every
method that applies to a full protocol is built on the smoke variant
(:func:`tasks.classification.full.protocols.smoke_variant`) of a three-stage same-family pair and a
four-stage cross-family pair, with a teacher file in RepDistiller's format, on the official-format
CIFAR-100 fixture, and must give finite scalar losses whose gradients reach only the student and the
method's extras (its init-stage losses too, for the two-stage methods). The stage-reading methods must
read as many stages as the protocol's ``feature_stages`` says.
"""

from __future__ import annotations

import pytest
import torch

from bench.protocol import get_protocol
from bench.runner import RunOptions, Workspace
from bench.suite import applicable_methods
from real_formats import reference_checkpoint, small_cifar100
from tasks.classification.full.protocols import smoke_variant

# tests/contract, on the path as the test's folder
from test_method_contract import first_batch, graph_leaves, make_distiller

#: (teacher, student): three stages each, and four stages each (``feature_stages = 4``)
PAIRS = [("resnet56", "resnet20"), ("vgg13", "MobileNetV2")]
CASES = [(pair, m) for pair in PAIRS for m in applicable_methods(get_protocol(f"cifar100-{pair[0]}-{pair[1]}"))]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    """One workspace per pair: the smoke variant, the CIFAR-100 fixture and a reference-format teacher file."""
    root = tmp_path_factory.mktemp("full-smoke")
    data = small_cifar100(root / "data", train=16, test=8)
    built = {}
    for teacher, student in PAIRS:
        protocol = smoke_variant(get_protocol(f"cifar100-{teacher}-{student}"), epochs=2, batch_size=8)
        options = RunOptions(data_root=str(data), teacher_file=str(reference_checkpoint(root / f"{teacher}.pth",
                                                                                        teacher)))
        built[(teacher, student)] = Workspace(protocol, options)
    return built


def test_every_classification_method_is_covered():
    from bench.registry import METHODS

    # all but the multi-teacher and assistant methods: the full protocols declare no ensemble and no chain
    protocol = get_protocol("cifar100-vgg13-vgg8")
    expected = {m for m in METHODS.names() if not METHODS.get(m).unmet_requirement(protocol)}
    assert {m for _, m in CASES} == expected and len(expected) >= 21


@pytest.mark.parametrize("pair,name", CASES, ids=[f"{t}-{s}-{m}" for (t, s), m in CASES])
def test_losses_and_gradients_on_the_zoo_models(workspaces, pair, name):
    ws = workspaces[pair]
    distiller = make_distiller(ws, name)
    stages = ws.protocol.feature_stages or 3
    if "stages" in distiller.method.hparams:
        assert distiller.method.hparams["stages"] == stages
    allowed = {id(p) for p in distiller.trainable_parameters() + distiller.method.auxiliary_parameters()}
    stages_to_check = ["init", "main"] if distiller.method.init_stage else ["main"]
    for stage in stages_to_check:
        distiller.stage = stage
        terms = distiller(first_batch(ws))
        assert terms, f"{name} returned no {stage} loss terms"
        for term, value in terms.items():
            assert value.ndim == 0 and torch.isfinite(value), f"{name}.{term} ({stage}) = {value}"
        leaves = graph_leaves(sum(terms.values()))
        assert leaves and leaves <= allowed, f"{name}: {stage} gradients flow outside the student and extras"
