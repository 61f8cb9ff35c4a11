"""Image classification: generated shapes dataset, CIFAR and ImageFolder adapters."""
