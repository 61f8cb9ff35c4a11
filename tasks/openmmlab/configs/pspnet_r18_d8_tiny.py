# A small PSPNet for the generated 64x64 scene-parsing images, trained from scratch. mmsegmentation 1.x
# format. Widths and classes are set by KDBench (tasks/openmmlab/models.py): the backbone's stem_channels and
# base_channels (stages of w, 2w, 4w, 8w; dilated, output stride 8) and the decode head's in_channels (8w)
# and channels (4w); num_classes from the data. No auxiliary head (KDBench's loss is the task's CE).
# kdbench_normalization: mean and std (0-255 scale) the model expects; 127.5 / 63.75 is the task's own
# normalisation, so the wrapper passes the task's input unchanged.
kdbench_normalization = dict(mean=[127.5, 127.5, 127.5], std=[63.75, 63.75, 63.75])
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    type="EncoderDecoder",
    backbone=dict(
        type="ResNetV1c", depth=18, stem_channels=16, base_channels=16, num_stages=4, out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg, norm_eval=False, style="pytorch",
        contract_dilation=True, init_cfg=None),
    decode_head=dict(
        type="PSPHead", in_channels=128, in_index=3, channels=64, pool_scales=(1, 2, 3, 6), dropout_ratio=0.1,
        num_classes=9, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
