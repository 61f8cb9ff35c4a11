"""Object detection: generated multi-object scenes, COCO-format data, detectors and COCO mAP."""
