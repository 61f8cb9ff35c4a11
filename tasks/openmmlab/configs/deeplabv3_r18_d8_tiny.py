# A small DeepLabV3 for the generated 64x64 scene-parsing images, trained from scratch. mmsegmentation 1.x
# format; widths and classes set by KDBench as for pspnet_r18_d8_tiny.py. ASPP dilations scaled to the
# 8x8 map of a 64-pixel image (1, 2, 4, 6 instead of 1, 12, 24, 36).
kdbench_normalization = dict(mean=[127.5, 127.5, 127.5], std=[63.75, 63.75, 63.75])
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    type="EncoderDecoder",
    backbone=dict(
        type="ResNetV1c", depth=18, stem_channels=16, base_channels=16, num_stages=4, out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg, norm_eval=False, style="pytorch",
        contract_dilation=True, init_cfg=None),
    decode_head=dict(
        type="ASPPHead", in_channels=128, in_index=3, channels=64, dilations=(1, 2, 4, 6), dropout_ratio=0.1,
        num_classes=9, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
