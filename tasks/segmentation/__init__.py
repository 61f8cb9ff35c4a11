"""Semantic segmentation: generated street scenes with per-pixel labels, and Cityscapes/VOC-format data."""
