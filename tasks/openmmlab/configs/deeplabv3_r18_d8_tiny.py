# A small DeepLabV3 for the generated 64x64 scene-parsing images, trained from scratch: pspnet_r18_d8_tiny.py's
# backbone with mmsegmentation's ASPP head instead of the pyramid pooling; widths and classes set by KDBench
# as there. ASPP dilations scaled to the 8x8 map of a 64-pixel image (1, 2, 4, 6 instead of 1, 12, 24, 36).
_base_ = "./pspnet_r18_d8_tiny.py"
model = dict(decode_head=dict(_delete_=True, type="ASPPHead", in_channels=128, in_index=3, channels=64,
                              dilations=(1, 2, 4, 6), dropout_ratio=0.1, num_classes=9,
                              norm_cfg=dict(type="BN", requires_grad=True), align_corners=False,
                              loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)))
