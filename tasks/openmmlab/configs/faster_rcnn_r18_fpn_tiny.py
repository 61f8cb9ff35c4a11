# A small Faster R-CNN (the two-stage setting of FGFI and of Chen et al. 2017) for the generated 64x64
# scenes, trained from scratch: faster_rcnn_r50_fpn_coco.py scaled down. mmdet 3.x format; widths and
# classes set by KDBench as for retinanet_r18_fpn_tiny.py. A ResNet-18 (no ImageNet weights) whose stages
# 1-3 feed an FPN at strides 4, 8, 16; the RPN's anchors are the tiny RetinaNet's (8, 16, 32 pixels, three
# ratios); proposals and RoI samples scaled down to 64-pixel images with at most 5 objects.
_base_ = "./faster_rcnn_r50_fpn_coco.py"
kdbench_frame = dict(_delete_=True, min_size=64, max_size=64, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25],
                     size_divisible=32)
model = dict(
    data_preprocessor=None,
    backbone=dict(depth=18, base_channels=16, out_indices=(0, 1, 2), frozen_stages=-1, norm_eval=False,
                  init_cfg=None),
    neck=dict(in_channels=[16, 32, 64], out_channels=32, start_level=0, num_outs=3),
    rpn_head=dict(in_channels=32, feat_channels=32,
                  anchor_generator=dict(scales=[2], strides=[4, 8, 16])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32, featmap_strides=[4, 8, 16], finest_scale=16),
        bbox_head=dict(in_channels=32, fc_out_channels=128, num_classes=6)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=600, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=50),
        rcnn=dict(max_per_img=50)),
)
