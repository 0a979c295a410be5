"""Segmentation results drawn as outlines over the raw image.

Objects are matched one-to-one to the ground truth at IoU 0.5 (as the AP@0.5
and F1@0.5 columns count them) and outlined in three colours from the
Okabe-Ito palette, which readers with the common forms of colour blindness
tell apart: matched objects (true positives), missed ground-truth objects
(false negatives) and predicted objects with no true counterpart (false
positives). A legend with the counts sits under the image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy import ndimage

from microsight.metrics.segmentation import matched_pairs
from microsight.qc.crop import crop_like, crop_region, describe_crop
from microsight.qc.figures import (
    display_plane,
    robust_range,
)

__all__ = ["OUTLINE_COLOURS", "outline_overlay", "segmentation_figure"]

#: Okabe-Ito sky blue, yellow and vermillion (RGB, 0-1).
OUTLINE_COLOURS = {
    "tp": (86 / 255, 180 / 255, 233 / 255),
    "fn": (240 / 255, 228 / 255, 66 / 255),
    "fp": (213 / 255, 94 / 255, 0.0),
}
LEGEND = {"tp": "matched (true positive)", "fn": "missed (false negative)",
          "fp": "false positive"}
# Outlines are drawn on the image enlarged to about this many pixels (thin lines).
_DISPLAY_SIDE = 480


def _outline(labels: np.ndarray, keep: np.ndarray, width: int) -> np.ndarray:
    """Inner boundary pixels (``width`` thick) of the objects whose ids are in ``keep``."""
    if keep.size == 0:
        return np.zeros(labels.shape, bool)
    size = 2 * width + 1
    edge = ndimage.maximum_filter(labels, size) != ndimage.minimum_filter(labels, size)
    return edge & np.isin(labels, keep)


def outline_overlay(image: Any, truth: Any, prediction: Any, *, threshold: float = 0.5,
                    scale: int = 1, region: tuple[slice, slice] | None = None
                    ) -> tuple[np.ndarray, dict[str, int]]:
    """An RGB picture of the raw image with matched, missed and false objects outlined.

    Parameters
    ----------
    image : array_like
        The raw 2D image (or 3D stack: its middle slice is shown).
    truth, prediction : array_like
        Ground-truth and predicted label images of the image's shape
        (0 = background); objects are matched on the whole array.
    threshold : float
        IoU of a match.
    scale : int
        Enlargement (nearest neighbour) before outlining, so that lines stay
        thin when the picture is shown large.
    region : tuple of slice, optional
        The part of the (2D) plane drawn; matching still uses everything.

    Returns
    -------
    rgb : numpy.ndarray
        ``(H * scale, W * scale, 3)`` floats in [0, 1]: the image in grey
        (1st-99.8th percentiles), outlines in :data:`OUTLINE_COLOURS`.
    counts : dict of str to int
        Number of ``tp``, ``fn`` and ``fp`` objects.
    """
    truth = np.asarray(truth).astype(np.int64)
    prediction = np.asarray(prediction).astype(np.int64)
    t_ids, p_ids = matched_pairs(truth, prediction, threshold)
    all_t, all_p = np.unique(truth[truth > 0]), np.unique(prediction[prediction > 0])
    missed, false = np.setdiff1d(all_t, t_ids), np.setdiff1d(all_p, p_ids)
    counts = {"tp": len(t_ids), "fn": len(missed), "fp": len(false)}

    plane = display_plane(image, "image")
    grey = np.asarray(crop_like(plane, region, plane.shape), np.float64)
    lo, hi = robust_range([grey])
    grey = np.clip((grey - lo) / (hi - lo), 0, 1) * 0.85  # dimmed: outlines stand out

    def big(a: np.ndarray) -> np.ndarray:
        a = crop_like(display_plane(a, "labels"), region, plane.shape)
        return np.kron(a, np.ones((scale, scale), a.dtype))

    rgb = np.repeat(np.kron(grey, np.ones((scale, scale)))[..., None], 3, axis=2)
    width = max(1, scale // 3)
    true2d, pred2d = big(truth), big(prediction)
    for kind, labels, ids in (("fn", true2d, missed), ("fp", pred2d, false),
                              ("tp", pred2d, p_ids)):
        rgb[_outline(labels, np.asarray(ids), width)] = OUTLINE_COLOURS[kind]
    return rgb, counts


def segmentation_figure(image: Any, truth: Any, prediction: Any, *,
                        probability: Any = None, threshold: float = 0.5
                        ) -> tuple[Figure, str]:
    """The raw image, the outlined segmentation with its legend, and the probability map.

    Large or elongated images show a region of interest (see
    :func:`~microsight.qc.figures.crop_region`); matching always uses the
    whole image.

    Parameters
    ----------
    image : array_like
        The raw image (channels averaged by the caller).
    truth, prediction : array_like
        Label images.
    probability : array_like, optional
        Foreground probability of the network, shown with a labelled colour bar.
    threshold : float
        IoU of a match.

    Returns
    -------
    figure : matplotlib.figure.Figure
    region : str
        Words on the region shown ('' for the whole image).
    """
    plane = display_plane(image, "image")
    # The region shown is where the objects (true and found) are.
    objects = (display_plane(truth, "truth") > 0).astype(np.float32)
    objects += display_plane(prediction, "prediction") > 0
    region = crop_region(objects)
    grey = np.asarray(crop_like(plane, region, plane.shape), np.float64)
    h, w = grey.shape
    scale = max(1, min(8, math.ceil(_DISPLAY_SIDE / max(h, w))))
    rgb, counts = outline_overlay(image, truth, prediction, threshold=threshold, scale=scale,
                                  region=region)
    shown = {"image": grey, "outlines": rgb}
    if probability is not None:
        prob = display_plane(probability, "probability")
        shown["probability"] = np.asarray(crop_like(prob, region, plane.shape), np.float64)

    n = len(shown)
    aspect = min(max(h / w, 0.3), 2.0)
    fig = Figure(figsize=(3.9 * n, 3.9 * aspect + 1.0), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    lo, hi = robust_range([shown["image"]])
    axes[0].imshow(shown["image"], cmap="gray", vmin=lo, vmax=hi)
    axes[0].set_title("image", fontsize=11)
    axes[1].imshow(rgb, interpolation="nearest")
    axes[1].set_title(f"network against ground truth (IoU >= {threshold:g})", fontsize=11)
    handles = [Patch(facecolor=OUTLINE_COLOURS[k], edgecolor="0.3",
                     label=f"{LEGEND[k]}: {counts[k]}") for k in ("tp", "fn", "fp")]
    axes[1].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                   fontsize=9, frameon=False, ncol=1)
    if probability is not None:
        im = axes[2].imshow(shown["probability"], cmap="viridis", vmin=0, vmax=1)
        axes[2].set_title("network probability", fontsize=11)
        bar = fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.02, shrink=0.9)
        bar.set_label("foreground probability (0 to 1)", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return fig, describe_crop(region, plane.shape, where="where most objects are")
