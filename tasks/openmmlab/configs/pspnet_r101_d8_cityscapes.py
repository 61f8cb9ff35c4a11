# PSPNet with a dilated ResNet-101 (V1c stem, output stride 8) for Cityscapes: mmsegmentation 1.x's
# configs/pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py, i.e. pspnet_r18_d8_cityscapes.py at depth 101
# with the wider heads of the ResNet-50/101 configs. As a teacher it is loaded whole from the model zoo's file
# (pspnet_r101-d8_512x1024_80k_cityscapes_20200606_112211-e1e1100f.pth, 79.76 mIoU on Cityscapes val), so its
# backbone starts from nothing here (no init_cfg).
_base_ = "./pspnet_r18_d8_cityscapes.py"
model = dict(
    backbone=dict(depth=101, init_cfg=None),
    decode_head=dict(in_channels=2048, channels=512),
    auxiliary_head=dict(in_channels=1024, channels=256),
)
