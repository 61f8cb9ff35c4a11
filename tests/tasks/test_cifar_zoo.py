"""The CIFAR-100 model zoo against the reference definitions (HobbitLong/RepDistiller, torchvision).

REFERENCE holds, per model, three figures obtained by running the reference code
itself outside this repository: HobbitLong/RepDistiller at commit
b84f547c5db6a35318d4671d7d5c4de74c822403, ``models.model_dict[name](num_classes=100)``
(the RepDistiller name in the comment where it differs from ours), with torch 2.14:

- the parameter count, ``sum(p.numel() for p in model.parameters())``;
- the MACs of one 1x3x32x32 forward pass counted by :func:`bench.profile.count_macs`
  (the same counter applied to the reference model);
- the sha256 of ``json.dumps(sorted((key, tuple(tensor.shape)) for key, tensor in
  model.state_dict().items()))``: equal keys and shapes mean a state dict saved by the
  reference loads into ours unchanged.

In that scratch run the reference models' state dicts (random weights and batch-norm
statistics) were also loaded into ours: logits were bit-identical in eval and train mode,
the updated batch-norm statistics too, and every feature point equalled the tensor at the
same place of the reference's ``forward(x, is_feat=True)`` list; ``stage<k>.preact`` equalled
(bit for bit, train and eval mode) the same place of ``forward(x, is_feat=True, preact=True)``
for resnet20, resnet8x4, ResNet50, wrn_16_2, vgg8, MobileNetV2, ShuffleNetV1 and ShuffleNetV2
(RepDistiller at eedab9d).

For torchvision's ResNets the reference is torchvision itself: parameter counts and MACs
(GFLOPs in torchvision's naming) as published in ``ResNet18_Weights.IMAGENET1K_V1.meta``
and ``ResNet34_Weights.IMAGENET1K_V1.meta`` (11,689,512 and 21,797,672 parameters; 1.814
and 3.664 G at 224x224), the key hash from ``torchvision.models.resnet18/34(weights=None)``
(torchvision 0.29.1) at 1000 classes, whose keys the published checkpoint files have.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch

from bench.distill import FeatureRecorder
from bench.profile import count_macs
from bench.registry import MODELS, TASKS
from bench.task import Split
from bench.teachers import TeacherZoo

# name: (parameters at 100 classes, MACs at 1x3x32x32, sha256 of the sorted (key, shape) list)
REFERENCE = {
    "resnet8": (83892, 12507392, "0db39ba6906cf53a40002591b6b7bbd13e581aceca0c3e111c148af1bcaaac3f"),
    "resnet14": (181108, 26663168, "6167f1cee04c305980a4e51c3ff5ce0d9e4c7b1967eea9f8700273bc3f89c499"),
    "resnet20": (278324, 40818944, "aafbd1e3ed5cc968e62e35d849ea7b7f43545a031734254ddf5f1f65a0c56495"),
    "resnet32": (472756, 69130496, "4cd2f97c31eb9aef4ce5e3c8dd7bf5be6ee319c1114d0d4ec16cd914c4c80b01"),
    "resnet44": (667188, 97442048, "fede84266e3abb426086a4ae9ded7da4e83b848ea04f87e226b5bd0317d304e3"),
    "resnet56": (861620, 125753600, "13c8dfd9a02c614cf46924eb42d7d6cc0d56bee9b5367f5e1f431aa24662fe96"),
    "resnet110": (1736564, 253155584, "cd051e607243a65dbcebd131148a0945530bf7eaf4642a4e0dde7cf1018244fa"),
    "resnet8x4": (1233540, 177071104, "ce371862c7aac1abf1d1dfcc6f711a55bfcc0a2989ed9d7e27cfed56e8ab02c9"),
    "resnet32x4": (7433860, 1083040768, "25d0ba152b29bdd87bbe7d9393271ef1b365ab457de1e9085894a4e72b674bea"),
    "ResNet50": (23705252, 1298014208, "068ca06b2b0a727076e27534212d6e67aac00fca74023c7ee6b71df3e8ca8856"),
    "wrn_16_1": (180916, 26663168, "e21bdd04c5a4c58720895696c40b0912e10e6d42d5f49ad0664d6fabddbe2ce8"),
    "wrn_16_2": (703284, 101118464, "acb2e562b3b64a33ffed1a3bc208383349316de31f2d62ec8901058dd852c7c7"),
    "wrn_40_1": (569780, 83286272, "b86b3bb550dfeb20e7f51db8bd7dfa219a3b13773c9046d4187144d58e90d003"),
    "wrn_40_2": (2255156, 327610880, "1d5fd3e2b78896e2fcf1cbb31d2096889ecfb6c273665f1c9b7b5ba8a59bc7ee"),
    "vgg8": (3965028, 96192512, "5c622ce8424f012d3deeab0de14461f02b87f01855a6a9aee6133b30d391c96b"),  # vgg8_bn
    "vgg11": (9277284, 209438720, "e9319a36b2e129c74c4f66ab484842ad6a546ed8c8aae2fea0e4686de6522e5b"),
    "vgg13": (9462180, 284936192, "95189e924eb4d30dc2db7be5abca5f64d7227c0def81fa0da913ac5677bd80c9"),
    "vgg16": (14774436, 398182400, "ac39cada5ce857a7e53125b4923a85ea11091d46206723f6830a23b6eed75296"),
    "vgg19": (20086692, 511428608, "1bea785f5324b4437dff809b837dbe5272baf07e25d02db6149580a40bf4a06e"),
    # model_dict["MobileNetV2"] is mobile_half
    "MobileNetV2": (812836, 6523648, "36772ea082891b20dc84c9a2d77749f50e4410d1829e77caf7921867a6177e35"),
    # model_dict["ShuffleV1"] and model_dict["ShuffleV2"]
    "ShuffleNetV1": (949258, 38691456, "9bf563996acdc6deaa4330dd89c2414b44ca3bca6c0d697250614ce1e65af85b"),
    "ShuffleNetV2": (1355528, 44504448, "4eab41c7c215fdf7a9e1113fe07f57c8fe98de33de32cb047b122bfdf9116c16"),
}
# torchvision: (parameters at 1000 classes, MACs at 1x3x224x224 in G to 3 decimals, key sha256)
TORCHVISION = {
    "torchvision_resnet18": (11689512, 1.814, "5053771ee593804da940bc7cf1dd383af89a52b40e183efce8bddf0a419e6200"),
    "torchvision_resnet34": (21797672, 3.664, "505025c056339331060639a323af078b2a95fcee4d57a5c14108092dd19685a7"),
}
ZOO_PACKAGE = "tasks.classification.cifar_zoo"


def key_digest(model: torch.nn.Module) -> str:
    keys = sorted((k, tuple(v.shape)) for k, v in model.state_dict().items())
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()


def on_meta(name: str, num_classes: int) -> torch.nn.Module:
    """The model built on the meta device: shapes only, no memory, no initialisation cost."""
    with torch.device("meta"):
        return MODELS.get(name)(num_classes=num_classes).eval()


def test_every_zoo_model_is_checked_against_its_reference():
    zoo = {n for n in MODELS.names() if MODELS.get(n).__module__.startswith(ZOO_PACKAGE)}
    assert zoo == set(REFERENCE) | set(TORCHVISION)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_matches_the_reference_model(name):
    params, macs, digest = REFERENCE[name]
    model = on_meta(name, 100)
    assert sum(p.numel() for p in model.parameters()) == params
    assert count_macs(model, (3, 32, 32), device="meta")[0] == macs
    assert key_digest(model) == digest


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_matches_torchvision(name):
    params, gmacs, digest = TORCHVISION[name]
    model = on_meta(name, 1000)
    assert sum(p.numel() for p in model.parameters()) == params
    assert round(count_macs(model, (3, 224, 224), device="meta")[0] / 1e9, 3) == gmacs
    assert key_digest(model) == digest
    assert MODELS.get(name)().fc.out_features == 1000  # torchvision's default class count


@pytest.mark.parametrize("name", sorted(REFERENCE) + sorted(TORCHVISION))
def test_feature_points_are_declared_and_shaped(name):
    """stem, stage1..N at non-increasing resolution, backbone.out = stageN, embedding = the classifier's input."""
    task = TASKS.get("classification")()
    points = task.feature_points(name)
    stages = sorted(p for p in points if re.fullmatch(r"stage\d+", p))
    assert {"stem", "backbone.out", "embedding"} <= set(points) and len(stages) in (3, 4)
    assert points["backbone.out"] == points[stages[-1]]
    model = on_meta(name, 100)
    recorder = FeatureRecorder(model, points)
    size = 64 if name.startswith("torchvision") else 32
    logits, features = recorder.record(lambda: model(torch.zeros(2, 3, size, size, device="meta")))
    assert logits.shape == (2, 100)
    sizes = [features[s].shape[-1] for s in ["stem", *stages]]
    assert all(f.dim() == 4 for s, f in features.items() if s != "embedding")
    assert sizes == sorted(sizes, reverse=True)
    classifier = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert features["embedding"].shape == (2, classifier.in_features)
    preacts = [f"{s}.preact" for s in stages]
    if not name.startswith("torchvision"):  # ImageNet models: no method reads their pre-activations yet
        assert [features[p].shape for p in preacts] == [features[s].shape for s in stages]


#: zoo models whose stages end with a ReLU right after the pre-activation point
RELU_AFTER_PREACT = ["tinyresnet_8", "resnet8", "resnet8x4", "ResNet50", "vgg8", "ShuffleNetV1"]


@pytest.mark.parametrize("name", RELU_AFTER_PREACT)
def test_stage_output_is_the_relu_of_its_pre_activation(name):
    """``stage<k>.preact`` is the tensor the stage's last ReLU reads, recorded before that ReLU runs
    (an in-place ReLU would overwrite it): ReLU(preact) == stage output, and preact has negatives."""
    task = TASKS.get("classification")()
    points = task.feature_points(name)
    torch.manual_seed(0)
    model = MODELS.get(name)(num_classes=10).train()
    _, features = FeatureRecorder(model, points).record(lambda: model(torch.randn(2, 3, 32, 32)))
    for k in range(1, 1 + sum(bool(re.fullmatch(r"stage\d+", p)) for p in points)):
        pre, post = features[f"stage{k}.preact"], features[f"stage{k}"]
        assert torch.equal(pre.relu(), post) and (pre < 0).any()


def test_feature_points_of_other_models_are_unchanged():
    task = TASKS.get("classification")()
    assert task.feature_points("tinyresnet_8") == {"backbone.out": "stages", "embedding": "pool", "stem": "stem",
                                                   "stage1": "stages.0", "stage2": "stages.1", "stage3": "stages.2",
                                                   "stage1.preact": "stages.0.preact",
                                                   "stage2.preact": "stages.1.preact",
                                                   "stage3.preact": "stages.2.preact"}
    assert task.feature_points("no_such_model") == {}


def _randomised(name: str) -> torch.nn.Module:
    """A zoo model with random weights and batch-norm statistics (not its initialisation)."""
    torch.manual_seed(3)
    model = MODELS.get(name)(num_classes=100)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                value.copy_(torch.rand_like(value) + 0.5 if "running_var" in key else torch.randn_like(value) * 0.1)
    return model.eval()


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_1", "vgg8", "MobileNetV2", "ShuffleNetV1", "ShuffleNetV2"])
def test_a_checkpoint_in_the_reference_format_loads_as_teacher_and_reproduces_logits(name, smoke_protocol,
                                                                                      tmp_path):
    """RepDistiller's ``train_teacher.py`` saves ``{"epoch", "model": state_dict, "accuracy", "optimizer"}``
    (its ``ckpt_epoch_240.pth``, also the files of mdistiller's ``cifar_teachers.tar``); the teacher path
    (``--teacher FILE``) loads it with no key renamed and the logits are those of the saved model."""
    model = _randomised(name)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"epoch": 240, "model": model.state_dict(), "accuracy": torch.tensor(71.5),
                "optimizer": optimizer.state_dict()}, path)
    classes = tuple(f"c{i}" for i in range(100))
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=generator)
    split = Split(images, torch.arange(4), classes, source="fixture")
    task = TASKS.get("classification")()
    teacher = TeacherZoo(tmp_path / "zoo").from_file(smoke_protocol, task, {"train": split, "test": split},
                                                     str(path), model_name=name)
    x = torch.randn(4, 3, 32, 32, generator=generator)
    with torch.no_grad():
        assert torch.equal(teacher.model.eval()(x), model(x))
