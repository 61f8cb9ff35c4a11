# A small Faster R-CNN (the two-stage setting of FGFI and of Chen et al. 2017) for the generated 64x64
# scenes, trained from scratch. mmdet 3.x format; widths and classes set by KDBench as for
# retinanet_r18_fpn_tiny.py. The RPN's anchors are the RetinaNet's (8, 16, 32 pixels at strides 4, 8, 16,
# three ratios); proposals and RoI samples are scaled down to 64-pixel images with at most 5 objects.
kdbench_frame = dict(min_size=64, max_size=64, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], size_divisible=32)
model = dict(
    type="FasterRCNN",
    backbone=dict(
        type="ResNet", depth=18, base_channels=16, num_stages=4, out_indices=(0, 1, 2), frozen_stages=-1,
        norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False, style="pytorch", init_cfg=None),
    neck=dict(type="FPN", in_channels=[16, 32, 64], out_channels=32, start_level=0, num_outs=3),
    rpn_head=dict(
        type="RPNHead", in_channels=32, feat_channels=32,
        anchor_generator=dict(type="AnchorGenerator", scales=[2], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0, 0.0, 0.0, 0.0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type="L1Loss", loss_weight=1.0)),
    roi_head=dict(
        type="StandardRoIHead",
        bbox_roi_extractor=dict(
            type="SingleRoIExtractor", roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
            out_channels=32, featmap_strides=[4, 8, 16], finest_scale=16),
        bbox_head=dict(
            type="Shared2FCBBoxHead", in_channels=32, fc_out_channels=128, roi_feat_size=7, num_classes=6,
            bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0, 0.0, 0.0, 0.0],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type="L1Loss", loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                          match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type="RandomSampler", num=64, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=-1, pos_weight=-1, debug=False),
        rpn_proposal=dict(nms_pre=600, max_per_img=100, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(
            assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type="RandomSampler", num=64, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
            pos_weight=-1, debug=False)),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=50, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5), max_per_img=50)),
)
