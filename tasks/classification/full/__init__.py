"""The full tier of classification: the published benchmarks (CIFAR-100 CRD tables, ImageNet R34 -> R18)."""
