"""Restoration family: paired or self-supervised image-to-image methods."""
