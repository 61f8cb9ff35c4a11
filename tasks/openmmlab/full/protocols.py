"""The OpenMMLab full tier: protocol files of the papers' settings, with the published numbers as claims.

* ``coco-faster-rcnn-r101-r50`` (``coco_faster_rcnn_r101_r50.toml``): mmdet's Faster R-CNN R101-FPN ->
  R50-FPN on COCO with mmdet's 1x schedule, the two-stage setting of FGFI and Chen et al.;
* ``cityscapes-pspnet-r101-r18`` (``cityscapes_pspnet_r101_r18.toml``): mmsegmentation's PSPNet R101-D8 ->
  R18-D8 on Cityscapes with its 80k schedule, CWD as MMRazor runs it, and the SKD pair.

Both pin the model zoo's teacher file and read their data from ``--data-root``. They are registered in
every environment (``kdbench list`` and the suite's plan show them; the suite skips them without the
data), but their models are built only where OpenMMLab is installed. Each file's comment says where
the recipe comes from and what differs. The claims (``published_*.json``) are data, read by
:mod:`bench.claims`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bench.claims import register_claims
from bench.protocol import Protocol
from bench.protocol_file import protocol_from_data, read_data_file
from bench.registry import PROTOCOLS

HERE = Path(__file__).resolve().parent
FILES = {"coco-faster-rcnn-r101-r50": HERE / "coco_faster_rcnn_r101_r50.toml",
         "cityscapes-pspnet-r101-r18": HERE / "cityscapes_pspnet_r101_r18.toml"}


def file_protocol(path: Path) -> Protocol:
    """The protocol file ``path``, checked as any user's file is."""
    return protocol_from_data(read_data_file(path), path.name)


for _name, _path in FILES.items():
    PROTOCOLS.register(_name)(functools.partial(file_protocol, _path))
register_claims(HERE / "published_coco_faster_rcnn.json")
register_claims(HERE / "published_cityscapes_pspnet.json")
