"""Segmentation family: semantic and instance segmentation from label images."""
