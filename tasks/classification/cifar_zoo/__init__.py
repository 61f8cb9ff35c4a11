"""The CIFAR-100 model zoo of the CRD / RepDistiller table, plus torchvision's ImageNet ResNets.

One module per family; each registers its models in ``bench.registry.MODELS``
with their feature points (:mod:`.registration`). Architectures and module
names follow HobbitLong/RepDistiller ``models/*.py`` (commit b84f547), so a
teacher checkpoint saved by RepDistiller or mdistiller loads unchanged.
"""

from tasks.classification.cifar_zoo import (  # noqa: F401 - imported to register the models
    mobilenetv2,
    resnet,
    resnetv2,
    shufflenetv1,
    shufflenetv2,
    torchvision_resnet,
    vgg,
    wrn,
)
