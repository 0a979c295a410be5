"""Simulated self-driving microscope."""
