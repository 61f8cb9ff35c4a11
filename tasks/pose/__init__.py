"""Pose estimation: generated articulated figures and COCO person-keypoints data (top-down crops)."""
