"""The OpenMMLab backend: mmdet detectors and mmseg segmentors behind the detection and segmentation tasks.

KDBench's methods talk to models through the task's feature points; this package makes an mmdet or
mmseg model, built from its own config, look like the torch-native models of those tasks:

* :mod:`tasks.openmmlab.detector`: an mmdet detector (one-stage or two-stage) taking the detection
  task's images and targets, returning the task's loss terms in training and its detections in
  evaluation, with taps at ``neck.p<k>`` (the FPN output at stride 2^k) and ``head.out`` (the dense
  head's scores and box deltas over all anchors, as torchvision's RetinaNet gives them);
* :mod:`tasks.openmmlab.segmentor`: an mmseg encoder-decoder returning full-size logits, with
  ``psp.out`` / ``embedding`` (the decode head's bottleneck), ``logits.low`` (its classifier) and
  ``backbone.out`` (the last backbone stage);
* :mod:`tasks.openmmlab.models`: models registered from configs (the package's own under
  ``configs/``, or a user's file) with checkpoints read from local files only;
* :mod:`tasks.openmmlab.protocols`: smoke and mini protocols on the generated scenes, registered
  when OpenMMLab is installed.

The metrics stay KDBench's (COCO mAP by pycocotools, mIoU from the confusion matrix), computed from
the same outputs for both backends. mmcv, mmdet and mmsegmentation live in their own environment
(``bash tools/install-openmmlab.sh``; see the README): importing this package never imports them.
"""

from __future__ import annotations

import importlib
import importlib.util

from bench.errors import ConfigError

INSTALL_HINT = ("the OpenMMLab backend needs mmcv, mmdet and mmsegmentation, which live in their own "
                "environment: bash tools/install-openmmlab.sh (then .venv-openmmlab/bin/kdbench ...)")
PACKAGES = {"mmdet": "mmdet", "mmseg": "mmsegmentation"}


def available(package: str = "mmdet") -> bool:
    """Whether ``package`` (``mmdet`` or ``mmseg``) and mmcv's compiled ops can be imported, without importing
    them (a cheap look at what is installed)."""
    return importlib.util.find_spec(package) is not None and importlib.util.find_spec("mmcv") is not None


def require(package: str):
    """Import ``package`` (``mmdet`` or ``mmseg``) with all its modules registered; a ConfigError saying how to
    install it when it is missing."""
    if not available(package):
        raise ConfigError(f"{PACKAGES.get(package, package)} is not installed: {INSTALL_HINT}")
    module = importlib.import_module(package)
    importlib.import_module(f"{package}.utils").register_all_modules(init_default_scope=False)
    return module
