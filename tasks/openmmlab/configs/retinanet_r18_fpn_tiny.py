# A small RetinaNet for the generated 64x64 scenes, trained from scratch (KDBench's OpenMMLab smoke and mini
# protocols). mmdet 3.x format. Widths and classes are set by KDBench (tasks/openmmlab/models.py): the
# backbone's base_channels (stages of w, 2w, 4w, 8w) and the FPN's in_channels; num_classes from the data.
# Levels: the FPN over stages 1-3 at strides 4, 8, 16 (p2-p4; 5-pixel objects need stride 4), one anchor
# size per level (8, 16, 32 pixels) times three ratios: the torch-native retinanet_fpn_<w>'s anchors.
# The head normalises with GroupNorm (4 groups), as the torch-native one does: from scratch it barely
# trains without. KDBench resizes and pads the images itself (kdbench_frame), not mmdet's preprocessor.
kdbench_frame = dict(min_size=64, max_size=64, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], size_divisible=32)
model = dict(
    type="RetinaNet",
    backbone=dict(
        type="ResNet", depth=18, base_channels=16, num_stages=4, out_indices=(0, 1, 2), frozen_stages=-1,
        norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False, style="pytorch", init_cfg=None),
    neck=dict(type="FPN", in_channels=[16, 32, 64], out_channels=32, start_level=0, num_outs=3),
    bbox_head=dict(
        type="RetinaHead", num_classes=6, in_channels=32, stacked_convs=2, feat_channels=32,
        norm_cfg=dict(type="GN", num_groups=4, requires_grad=True),
        anchor_generator=dict(type="AnchorGenerator", scales=[2], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0, 0.0, 0.0, 0.0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type="L1Loss", loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
        sampler=dict(type="PseudoSampler"), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5),
                  max_per_img=50),
)
