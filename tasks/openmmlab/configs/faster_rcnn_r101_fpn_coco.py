# Faster R-CNN with a ResNet-101 FPN for COCO: mmdet 3.x's configs/faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py,
# which is the ResNet-50 model (faster_rcnn_r50_fpn_coco.py) at depth 101. As a teacher it is loaded whole
# from the model zoo's file (faster_rcnn_r101_fpn_1x_coco_20200130-f513f705.pth, 39.4 box AP on COCO
# val2017), so its backbone starts from nothing here (no init_cfg).
_base_ = "./faster_rcnn_r50_fpn_coco.py"
model = dict(backbone=dict(depth=101, init_cfg=None))
