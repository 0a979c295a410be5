"""Crop family: classification and embedding of cell crops."""
