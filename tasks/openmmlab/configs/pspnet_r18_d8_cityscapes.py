# PSPNet with a dilated ResNet-18 (V1c stem, output stride 8) for Cityscapes: mmsegmentation 1.x's
# configs/pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py (model part), with BN for SyncBN (KDBench's
# runs are one process or DDP without SyncBN) and the ImageNet backbone read from a local file: the bare
# name is looked up in $KDBENCH_CHECKPOINTS (mmcv's open-mmlab://resnet18_v1c is that file; KDBench never
# downloads it). Model zoo: 74.87 mIoU on Cityscapes val (512x1024 crops, 80k iterations).
kdbench_normalization = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=dict(type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(
        type="ResNetV1c", depth=18, num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1), norm_cfg=norm_cfg, norm_eval=False, style="pytorch", contract_dilation=True,
        init_cfg=dict(type="Pretrained", checkpoint="resnet18_v1c-b5776b93.pth")),
    decode_head=dict(
        type="PSPHead", in_channels=512, in_index=3, channels=128, pool_scales=(1, 2, 3, 6), dropout_ratio=0.1,
        num_classes=19, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type="FCNHead", in_channels=256, in_index=2, channels=64, num_convs=1, concat_input=False,
        dropout_ratio=0.1, num_classes=19, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
