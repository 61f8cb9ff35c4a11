"""Image classification: generated shapes dataset, CIFAR and ImageFolder adapters, the CIFAR-100 model zoo."""

# The zoo registers its models when imported; importing it with the package registers them whichever
# module of the package is imported first, without relying on bench.registry.load_plugins' walk.
from tasks.classification import cifar_zoo  # noqa: F401, E402
