"""Figures for QC reports, drawn on bare ``matplotlib.figure.Figure`` objects.

Nothing here touches pyplot, so building a report never changes matplotlib's
global state (backend, current figure) in the caller's process. PNGs are
rendered by the Agg canvas that ``Figure.savefig`` picks on its own.
"""

from __future__ import annotations

import base64
import io
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from microsight.errors import MicrosightError
from microsight.qc.crop import crop_like
from microsight.qc.epochs import shown_epoch

__all__ = [
    "display_plane",
    "figure_to_png",
    "history_figure",
    "image_panels_figure",
    "reliability_figure",
    "resolution_curve_figure",
    "to_display_2d",
]

# Display budget: the longest image side shown, and the PNG size we aim below.
MAX_DISPLAY_SIDE = 512
MAX_PNG_BYTES = 300_000
_ROBUST_PERCENTILES = (1.0, 99.8)


def figure_to_png(fig: Figure, *, dpi: float = 100, max_bytes: int = MAX_PNG_BYTES) -> str:
    """Render ``fig`` to a base64 PNG string and release it.

    If the PNG is larger than ``max_bytes`` (noisy images compress badly), it
    is rendered again at a lower resolution, a few times at most.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; it is closed afterwards.
    dpi : float
        Starting resolution.
    max_bytes : int
        Target upper bound for the PNG size.

    Returns
    -------
    str
        Base64-encoded PNG data (ASCII), without the ``data:`` prefix.
    """
    try:
        for _ in range(5):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
            data = buf.getvalue()
            if len(data) <= max_bytes:
                break
            dpi *= 0.7 * math.sqrt(max_bytes / len(data))
    finally:
        # A figure made through pyplot stays registered until closed there; one
        # made as a bare Figure just needs its artists dropped.
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(fig)
        fig.clear()
    return base64.b64encode(data).decode("ascii")


def display_plane(image: Any, name: str) -> np.ndarray:
    """The 2D plane of an image that panels show, as a view (no copy).

    Singleton axes are dropped; a 3D stack gives its middle slice along the
    first axis (Z in microsight's ZYX order).

    Parameters
    ----------
    image : array_like
        A 2D image or 3D stack.
    name : str
        Panel name, used in error messages.

    Returns
    -------
    numpy.ndarray
        A 2D array of the image's dtype.
    """
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise MicrosightError(f"panel '{name}' must be a real numeric array, got {arr.dtype}.")
    arr = np.squeeze(arr)
    if arr.ndim == 3:
        arr = arr[arr.shape[0] // 2]
    if arr.ndim != 2:
        raise MicrosightError(
            f"panel '{name}' must be a 2D image or 3D stack, got shape {np.shape(image)}."
        )
    return arr


def to_display_2d(image: Any, name: str, *, max_side: int = MAX_DISPLAY_SIDE) -> np.ndarray:
    """Reduce an image to a small 2D float array for display.

    The plane of :func:`display_plane`; images larger than ``max_side`` are
    subsampled by an integer stride (display only, never for metrics).

    Parameters
    ----------
    image : array_like
        A 2D image or 3D stack.
    name : str
        Panel name, used in error messages.
    max_side : int
        Longest side after subsampling.

    Returns
    -------
    numpy.ndarray
        A 2D float array.
    """
    arr = display_plane(image, name)
    stride = max(1, math.ceil(max(arr.shape) / max_side))
    return arr[::stride, ::stride].astype(np.float64)


def robust_range(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    """1st-99.8th percentile range of the finite values in ``arrays``."""
    values = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, _ROBUST_PERCENTILES)
    if hi <= lo:
        # Nearly constant images: fall back to the full range, then to a unit one.
        lo, hi = float(values.min()), float(values.max())
        if hi <= lo:
            hi = lo + 1.0
    return float(lo), float(hi)


def image_panels_figure(
    panels: Mapping[str, Any],
    *,
    shared_range: Sequence[str] | None = None,
    cmaps: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    reference: str | None = None,
    region: tuple[slice, slice] | None = None,
    from_zero: Sequence[str] = (),
    max_columns: int = 3,
) -> Figure:
    """2D images in a grid, each with a labelled colour bar, large enough to read.

    Parameters
    ----------
    panels : mapping of str to array_like
        Title to image (2D, or 3D showing the middle Z slice).
    shared_range : sequence of str, optional
        Panels shown with one display range, the robust 1-99.8 percentiles
        of the ``reference`` panel, so their brightness is comparable. Every
        other panel gets its own robust range.
    cmaps : mapping of str to str, optional
        Colormap per panel name; default ``"gray"``.
    labels : mapping of str to str, optional
        Colour bar label per panel name.
    reference : str, optional
        The panel whose percentiles set the shared range and whose grid
        ``region`` refers to; default ``target`` if shared, else the first
        shared panel, else the first panel.
    region : tuple of slice, optional
        Crop (rows, columns) on the reference panel's grid; other panels are
        cropped at the same place (scaled when their grid differs, e.g. the
        input of super-resolution).
    from_zero : sequence of str
        Panels whose display range starts at 0 (error maps: black is no error).
    max_columns : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not panels:
        raise MicrosightError("image panels need at least one image.")
    shared = list(shared_range or [])
    cmaps, labels = dict(cmaps or {}), dict(labels or {})
    unknown = [n for n in [*shared, *cmaps, *labels] if n not in panels]
    if unknown:
        raise MicrosightError(f"unknown panel name(s) {unknown}; panels are {list(panels)}.")
    full = {name: display_plane(img, name) for name, img in panels.items()}
    ref = reference or panel_reference(list(panels), shared)
    images = {name: to_display_2d(crop_like(img, region, full[ref].shape), name)
              for name, img in full.items()}
    shared_lim = robust_range([images[ref]]) if shared else None

    n = len(images)
    cols = min(n, max_columns)
    rows = math.ceil(n / cols)
    h, w = images[ref].shape
    aspect = min(max(h / w, 0.3), 2.0)
    fig = Figure(figsize=(3.7 * cols, rows * (3.0 * aspect + 0.4)), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, img) in zip(axes, images.items(), strict=False):
        vmin, vmax = shared_lim if name in shared else robust_range([img])
        if name in from_zero:
            vmin, vmax = 0.0, max(vmax, 1e-12)
        # Default interpolation: nearest when enlarging, anti-aliased when shrinking.
        im = ax.imshow(img, cmap=cmaps.get(name, "gray"), vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=11)
        ax.set_axis_off()
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, shrink=0.9)
        bar.ax.tick_params(labelsize=8)
        if name in labels:
            bar.set_label(labels[name], fontsize=9)
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig


def panel_reference(names: Sequence[str], shared: Sequence[str]) -> str:
    """The panel that sets the shared display range: the target, else the first shared one."""
    if "target" in shared:
        return "target"
    return shared[0] if shared else names[0]


def _numeric(value: Any) -> float | None:
    """``value`` as a finite float, or None if it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epoch, value) pairs for the rows where ``key`` holds a finite number."""
    xs, ys = [], []
    for i, row in enumerate(history):
        y = _numeric(row.get(key))
        if y is None:
            continue
        x = _numeric(row.get("epoch"))
        xs.append(float(shown_epoch(i if x is None else x)))
        ys.append(y)
    return xs, ys


def history_figure(
    history: Sequence[Mapping[str, Any]], *, keys: Sequence[str] | None = None
) -> Figure:
    """Loss curves and validation metrics over epochs.

    Columns whose name contains ``"loss"`` share the first axis (log scale if
    all values are positive); other ``val_*`` columns go on a second axis.
    The epoch with the lowest ``val_loss`` is marked on both.

    Parameters
    ----------
    history : sequence of mapping
        One row per epoch, e.g. ``{"epoch": 3, "train_loss": 0.1, "val_loss": 0.2}``.
        Rows without ``"epoch"`` use their index. Epochs are stored from 0 and
        drawn from 1. Missing values are skipped.
    keys : sequence of str, optional
        Only plot these columns.

    Returns
    -------
    matplotlib.figure.Figure
    """
    columns: list[str] = []
    for row in history:
        for key, value in row.items():
            if key != "epoch" and key not in columns and _numeric(value) is not None:
                columns.append(key)
    if keys is not None:
        missing = [k for k in keys if k not in columns]
        if missing:
            raise MicrosightError(f"history has no numeric column(s) {missing}; it has {columns}.")
        columns = [c for c in columns if c in keys]
    losses = [c for c in columns if "loss" in c]
    metrics = [c for c in columns if c not in losses and c.startswith("val_")]
    if keys is not None:
        # Columns asked for by name are shown even if they are not val_* metrics.
        metrics = [c for c in columns if c not in losses]

    n_axes = int(bool(losses)) + int(bool(metrics)) or 1
    fig = Figure(figsize=(5.2 * n_axes, 3.4), layout="constrained")
    axes = list(fig.subplots(1, n_axes, squeeze=False)[0])

    best_epoch = None
    if "val_loss" in columns:
        xs, ys = _series(history, "val_loss")
        if ys:
            best_epoch = xs[int(np.argmin(ys))]

    groups = [(g, label) for g, label in ((losses, "loss"), (metrics, "metric")) if g]
    for ax, (group, label) in zip(axes, groups, strict=False):
        positive = True
        for key in group:
            xs, ys = _series(history, key)
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=key)
            positive = positive and all(y > 0 for y in ys)
        if label == "loss" and positive:
            ax.set_yscale("log")
        if best_epoch is not None:
            ax.axvline(
                best_epoch,
                color="0.4",
                ls="--",
                lw=1,
                label=f"best val_loss (epoch {best_epoch:g})",
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        epochs = {x for key in group for x in _series(history, key)[0]}
        if len(epochs) == 1:  # one point: a readable axis around it, not +-0.05
            (only,) = epochs
            ax.set_xlim(only - 1, only + 1)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if not groups:
        axes[0].text(0.5, 0.5, "no numeric columns to plot", ha="center", va="center")
        axes[0].set_axis_off()
    return fig


def reliability_figure(calibration: Any) -> Figure:
    """Reliability diagram of a :class:`~microsight.metrics.calibration.Calibration`.

    Predicted (x) against observed (y) per bin with the diagonal of perfect
    calibration; regression results get a second panel with the coverage of
    central intervals against their nominal level.

    Parameters
    ----------
    calibration : Calibration
        From ``regression_calibration`` or ``classification_calibration``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    regression = calibration.kind == "regression"
    n = 2 if regression and calibration.coverage else 1
    fig = Figure(figsize=(4.2 * n, 3.6), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    ax = axes[0]
    pred, obs = np.asarray(calibration.predicted), np.asarray(calibration.observed)
    top = float(max(pred.max(), obs.max(), 1e-12)) * 1.05 if regression else 1.0
    ax.plot([0, top], [0, top], color="0.5", ls="--", lw=1, label="perfect calibration")
    ax.plot(pred, obs, marker="o", ms=4, label=f"model (ECE {calibration.ece:.3g})")
    if regression:
        ax.set_xlabel("predicted mean |error| (from the scale)")
        ax.set_ylabel("observed mean |error|")
    else:
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if n == 2:
        levels = sorted(calibration.coverage)
        ax2 = axes[1]
        ax2.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1)
        ax2.plot(levels, [calibration.coverage[lv] for lv in levels], marker="o", ms=4)
        ax2.set_xlabel("nominal coverage of central interval")
        ax2.set_ylabel("observed coverage")
        ax2.set_xlim(0, 1)
        ax2.set_ylim(0, 1)
        ax2.grid(alpha=0.3)
    return fig


def resolution_curve_figure(
    frequencies: Any,
    correlation: Any,
    *,
    threshold: Any = None,
    pixel_size: float = 1.0,
    unit: str = "px",
    label: str = "FRC",
) -> Figure:
    """A Fourier ring correlation (or decorrelation) curve over spatial frequency.

    Parameters
    ----------
    frequencies : array_like
        Spatial frequency in cycles per pixel.
    correlation : array_like
        The curve.
    threshold : float or array_like, optional
        Threshold line (a constant such as 1/7, or one value per frequency).
    pixel_size : float
        Pixel size, to label the axis in cycles per ``unit``.
    unit : str
        Unit of ``pixel_size``.
    label : str
        Legend entry of the curve.

    Returns
    -------
    matplotlib.figure.Figure
    """
    freq = np.asarray(frequencies, dtype=np.float64) / float(pixel_size)
    fig = Figure(figsize=(5.2, 3.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(freq, np.asarray(correlation, dtype=np.float64), label=label)
    if threshold is not None:
        t = np.broadcast_to(np.asarray(threshold, dtype=np.float64), freq.shape)
        ax.plot(freq, t, color="0.4", ls="--", lw=1, label="threshold")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.set_xlabel(f"spatial frequency (1/{unit})")
    ax.set_ylabel("correlation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
