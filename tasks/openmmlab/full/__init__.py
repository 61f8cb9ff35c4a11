"""The full tier of the OpenMMLab backend: COCO Faster R-CNN and Cityscapes PSPNet, the detection and
segmentation KD papers' settings on mmdet's and mmsegmentation's configs."""
