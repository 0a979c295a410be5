"""What the segmentation family shares: label-image training data, stitched tiled
prediction of objects, instance metrics, the classical baseline and the report.

Training targets are always derived on the fly from label patches: the patch
sampler gathers (augmented) label patches next to the image patches and each
method's :meth:`SegmentationModule.make_targets` turns them into what its
network learns (classes, star distances, distance maps). Computing them after
augmentation keeps them consistent with flips and rotations (a star distance
along ray k of a flipped patch is not ray k of the original).

Prediction of objects on images of any size (:class:`BlockStitcher`): the
dense maps (probabilities, distances) are predicted by the tiled predictor,
which blends tiles smoothly and hands over finished row bands. Objects are
then extracted in overlapping blocks of rows (Z planes in 3D): each block is
processed with a margin of context on both sides, and an object is kept only
by the block that owns its seed (polygon centre or watershed marker). An
object crossing a block border therefore comes out whole and once, as long as
the margin is at least twice the largest object diameter (the object and the
seeds of its neighbours, which bound it, then lie inside the context). Only a
block plus margins of dense maps and labels is held at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field
from scipy import ndimage

from microsight.config import Configuration, MethodConfig, config_to_yaml
from microsight.data.layout import (
    check_channels,
    item_indices,
    item_to_output,
    output_axes,
    read_item,
    write_key,
)
from microsight.data.normalization import subsample
from microsight.data.pairs import TrainingSet, load_items, split_items
from microsight.data.shapes import label_outlines, object_table, relabel_random
from microsight.engine.bundle import Model
from microsight.engine.evaluate import Evaluation, summarize
from microsight.engine.module import MicrosightModule
from microsight.engine.predict import TiledPredictor, TileSettings, input_normalizer
from microsight.engine.training import normalize_inputs
from microsight.errors import MicrosightError
from microsight.io import Image, open_image_writer
from microsight.io.shapes import write_geojson, write_table
from microsight.metrics.segmentation import matching, pool_matching

#: Instance metrics every segmentation report shows (IoU threshold after '@').
INSTANCE_METRICS = ("ap@0.5", "ap@0.75", "ap@0.9", "f1@0.5", "pq@0.5", "precision@0.5",
                    "recall@0.5")
REPORT_THRESHOLDS = tuple(sorted({round(0.1 * k, 1) for k in range(1, 10)} | {0.75}))
MAX_PANELS = 3

# Extract objects from dense maps ``(C, *block)``: local labels, seeds ``(N, ndim)``
# (block coordinates), one score per object (label k is object k - 1) and optional
# polygons ``(N, n, 2)``.
Extractor = Callable[[np.ndarray], "Objects"]


class InstanceFields(MethodConfig):
    """Fields shared by the instance-segmentation methods."""

    block_margin: int = Field(
        64, ge=8, description="Context (pixels) around each post-processing block; at least "
                              "twice the largest object diameter, so that objects crossing "
                              "block borders come out whole and once.")
    block_pixels: int = Field(
        2**20, ge=2**10, description="Pixels per post-processing block (memory bound).")
    min_size: int = Field(8, ge=0, description="Objects smaller than this (pixels) are dropped.")
    tune_thresholds: bool = Field(
        True, description="After training, choose the post-processing thresholds on the "
                          "validation images (kept in the bundle; see qc.json "
                          "'postprocessing').")
    baseline_sigma: float = Field(1.0, ge=0, description="Classical baseline: Gaussian smoothing "
                                                         "before Otsu's threshold.")
    baseline_min_distance: int = Field(
        4, ge=1, description="Classical baseline: smallest distance between watershed seeds.")


@dataclass
class Objects:
    """Objects extracted from one block."""

    labels: np.ndarray
    seeds: np.ndarray
    scores: np.ndarray
    polygons: np.ndarray | None = None


@dataclass
class Segmentation:
    """Result of segmenting one item: labels, dense probability maps, object table."""

    labels: np.ndarray
    probability: np.ndarray | None = None
    table: dict[str, np.ndarray] = field(default_factory=dict)
    polygons: dict[int, np.ndarray] | None = None


def empty_objects(shape: tuple[int, ...], ndim: int) -> Objects:
    """No object in a block of ``shape``."""
    return Objects(np.zeros(shape, np.int32), np.zeros((0, ndim)), np.zeros(0))


def drop_small(objects: Objects, min_size: int) -> Objects:
    """Remove objects smaller than ``min_size`` pixels; keep ids consecutive."""
    if min_size <= 0 or len(objects.scores) == 0:
        return objects
    area = np.bincount(objects.labels.ravel(), minlength=len(objects.scores) + 1)[1:]
    keep = area[: len(objects.scores)] >= min_size
    if keep.all():
        return objects
    lut = np.zeros(len(objects.scores) + 1, np.int32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return Objects(lut[objects.labels], objects.seeds[keep], objects.scores[keep],
                   None if objects.polygons is None else objects.polygons[keep])


class BlockStitcher:
    """Turn row bands of dense maps into stitched labels, block by block.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the item.
    extract : callable
        ``extract(dense_block) -> Objects``.
    block : int
        Rows (planes) owned by one block.
    margin : int
        Rows of context on each side of a block.
    write_labels : callable
        ``write_labels(region, labels)`` receives finished label rows (int32).
    """

    def __init__(self, shape: tuple[int, ...], extract: Extractor, block: int, margin: int,
                 write_labels: Callable[[tuple[slice, ...], np.ndarray], None]):
        self.shape, self.extract = tuple(shape), extract
        self.block, self.margin = max(int(block), 1), int(margin)
        self.write_labels = write_labels
        self.chunks: list[tuple[int, np.ndarray]] = []  # (first row, dense rows)
        self.rows_in = 0
        self.next_start = 0
        self.labels = np.zeros((0, *shape[1:]), np.int32)
        self.labels_start = 0
        self.next_id = 1
        self.row_blocks: list[dict[str, np.ndarray]] = []
        self.polygons: dict[int, np.ndarray] = {}

    def add(self, region: tuple[slice, ...], dense: np.ndarray) -> None:
        """Receive the dense maps of rows ``region[0]`` (in order, full extent otherwise)."""
        start = region[0].start
        if start != self.rows_in:
            raise RuntimeError(f"rows arrive out of order: {start} after {self.rows_in}")
        self.chunks.append((start, dense))
        self.rows_in = start + dense.shape[1]
        n0 = self.shape[0]
        while self.next_start < n0 and self.rows_in >= min(
                self.next_start + self.block + self.margin, n0):
            self._process()

    def _dense(self, lo: int, hi: int) -> np.ndarray:
        parts = [c[:, max(lo - s, 0): hi - s] for s, c in self.chunks
                 if s < hi and s + c.shape[1] > lo]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _process(self) -> None:
        n0, m = self.shape[0], self.margin
        a = self.next_start
        b = min(a + self.block, n0)
        lo, hi = max(a - m, 0), min(b + m, n0)
        objects = self.extract(self._dense(lo, hi))
        owned = (objects.seeds[:, 0] >= a - lo) & (objects.seeds[:, 0] < b - lo)
        self._paint(objects, np.flatnonzero(owned), lo, hi)
        self.next_start = b
        keep_from = b - m if b < n0 else n0
        self.chunks = [(s, c) for s, c in self.chunks if s + c.shape[1] > keep_from]
        self._flush(min(keep_from, n0))

    def _paint(self, objects: Objects, kept: np.ndarray, lo: int, hi: int) -> None:
        grow = hi - (self.labels_start + len(self.labels))
        if grow > 0:
            self.labels = np.concatenate(
                [self.labels, np.zeros((grow, *self.shape[1:]), np.int32)])
        if len(kept) == 0:
            return
        lut = np.zeros(len(objects.scores) + 1, np.int32)
        lut[kept + 1] = np.arange(self.next_id, self.next_id + len(kept))
        canvas = self.labels[lo - self.labels_start: hi - self.labels_start]
        local = np.where(lut[objects.labels] > 0, objects.labels, 0)
        local[canvas != 0] = 0
        canvas[local > 0] = lut[local[local > 0]]
        slices = ndimage.find_objects(local, max_label=len(objects.scores))
        area = np.bincount(local.ravel(), minlength=len(objects.scores) + 1)
        self.next_id += len(kept)
        # An object wholly painted over by a neighbour's block keeps its id unused.
        kept = np.array([k for k in kept if slices[k] is not None], np.int64)
        offset = np.zeros(len(self.shape), np.int64)
        offset[0] = lo
        # Columns as arrays, one block at a time: a big image holds 10^5+ objects.
        boxes = np.array([[(sl.start, sl.stop) for sl in slices[k]] for k in kept],
                         np.int64).reshape(len(kept), len(self.shape), 2)
        self.row_blocks.append({
            "label": lut[kept + 1].astype(np.int64), "area": area[kept + 1].astype(np.int64),
            "score": np.asarray(objects.scores, np.float64)[kept],
            "seed": np.asarray(objects.seeds, np.float64)[kept] + offset,
            "min": boxes[..., 0] + offset, "max": boxes[..., 1] + offset})
        if objects.polygons is not None:
            for k in kept:
                self.polygons[int(lut[k + 1])] = (objects.polygons[k] + np.array(
                    [lo, 0.0])).astype(np.float32)

    def _flush(self, upto: int) -> None:
        n = upto - self.labels_start
        if n <= 0:
            return
        region = (slice(self.labels_start, upto),) + tuple(slice(0, s) for s in self.shape[1:])
        self.write_labels(region, self.labels[:n])
        self.labels = self.labels[n:]
        self.labels_start = upto

    def table(self) -> dict[str, np.ndarray]:
        """Object table: label, area, score, seed position, bounding box."""
        axes = "yx" if len(self.shape) == 2 else "zyx"
        nd = len(axes)
        blocks = self.row_blocks or [{
            "label": np.zeros(0, np.int64), "area": np.zeros(0, np.int64),
            "score": np.zeros(0), "seed": np.zeros((0, nd)),
            "min": np.zeros((0, nd), np.int64), "max": np.zeros((0, nd), np.int64)}]
        cols = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
        table = {"label": cols["label"], "area": cols["area"], "score": cols["score"]}
        table.update({a: cols["seed"][:, i] for i, a in enumerate(axes)})
        table.update({f"min_{a}": cols["min"][:, i] for i, a in enumerate(axes)})
        table.update({f"max_{a}": cols["max"][:, i] for i, a in enumerate(axes)})
        return table


def classical_instances(item: np.ndarray, *, sigma: float = 1.0, min_distance: int = 4,
                        min_size: int = 8) -> np.ndarray:
    """Otsu threshold + distance transform + marker watershed (classical baseline).

    Channels are averaged, the image is smoothed, foreground is the bright side
    of Otsu's threshold (holes filled, small specks removed), and seeds are the
    maxima of the smoothed distance transform at least ``min_distance`` apart.

    Parameters
    ----------
    item : numpy.ndarray
        ``(C, Y, X)`` or ``(C, Z, Y, X)`` image.

    Returns
    -------
    numpy.ndarray
        int32 label image.
    """
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    img = np.asarray(item, np.float32).mean(axis=0)
    if sigma > 0:
        img = ndimage.gaussian_filter(img, sigma)
    if img.max() <= img.min():
        return np.zeros(img.shape, np.int32)
    fg = ndimage.binary_fill_holes(img > threshold_otsu(img))
    fg = ndimage.binary_opening(fg, iterations=1)
    dist = ndimage.gaussian_filter(ndimage.distance_transform_edt(fg), 1.0)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=ndimage.label(fg)[0],
                           exclude_border=False)
    markers = np.zeros(img.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=fg).astype(np.int32)
    if min_size > 0 and labels.max() > 0:
        area = np.bincount(labels.ravel())
        labels[area[labels] < min_size] = 0
    return labels


def export_objects(labels: np.ndarray, *, csv: str | Path | None = None,
                   geojson: str | Path | None = None,
                   scores: dict[int, float] | None = None) -> dict[str, np.ndarray]:
    """Convert a label image to an object table (CSV) and outline polygons (GeoJSON).

    Parameters
    ----------
    labels : numpy.ndarray
        2D or 3D label image (0 = background).
    csv : str or Path, optional
        Write the table (label, area, centroid, bounding box[, score]) here.
    geojson : str or Path, optional
        Write the outlines as a QuPath-compatible FeatureCollection here (2D only).
    scores : dict, optional
        Object id -> score, added to the table and the GeoJSON measurements.

    Returns
    -------
    dict of str to numpy.ndarray
        The object table.
    """
    labels = np.asarray(labels)
    table = object_table(labels, scores)
    if csv is not None:
        write_table(csv, table)
    if geojson is not None:
        if labels.ndim != 2:
            raise MicrosightError("GeoJSON outlines need a 2D label image; write a CSV for 3D")
        props = {int(k): {"score": v} for k, v in (scores or {}).items()}
        write_geojson(geojson, label_outlines(labels), properties=props)
    return table


def label_display(labels: np.ndarray) -> np.ndarray:
    """Labels remapped to a few cycling values so that neighbours differ in colour."""
    labels = np.asarray(labels)
    return np.where(labels > 0, (labels * 7) % 19 + 1, 0).astype(np.float32)


class SegmentationModule(MicrosightModule):
    """Base of the segmentation methods: label targets, stitched prediction, evaluation.

    A method provides :meth:`network_channels`, :meth:`make_targets`,
    :meth:`extract` (dense maps of a block -> objects) and the dense channels
    to export as probabilities (:meth:`prob_channels`).
    """

    report_family = "segmentation"
    #: Several bundles of one method may predict together: their dense maps are
    #: averaged before objects are extracted.
    averages_members = True
    #: Targets are label images, derived into maps after sampling: nearest neighbour
    #: keeps ids, and every derived map (distances too) follows the zoomed objects.
    zoom_targets = "nearest"
    #: Name ending of the object table written next to a label image.
    table_suffix = "_objects.csv"

    def __init__(self, config: Configuration, in_channels: int = 1, out_channels: int = 1):
        # The bundle stores the label targets' single channel; the network's own
        # output channels follow from the method's configuration.
        super().__init__(config, in_channels, self.network_channels(config))

    # --- what a method provides ---------------------------------------------------
    @classmethod
    def network_channels(cls, config: Configuration) -> int:
        """Output channels of the network."""
        raise NotImplementedError

    def make_targets(self, labels: np.ndarray) -> np.ndarray:
        """Training targets ``(B, C, *S)`` from label patches ``(B, *S)`` (int)."""
        raise NotImplementedError

    @classmethod
    def extract(cls, config: Configuration, dense: np.ndarray) -> Objects:
        """Objects from the dense maps (``point_estimate`` of the network) of one block."""
        raise NotImplementedError

    @classmethod
    def prob_channels(cls, config: Configuration) -> tuple[int, ...]:
        """Dense channels written as the probability image."""
        return (0,)

    @classmethod
    def uses_instances(cls, config: Configuration) -> bool:
        """Whether the targets are instance label images (else class maps)."""
        return True

    @classmethod
    def threshold_grid(cls, config: Configuration) -> dict[str, list[float]]:
        """Candidate values of the post-processing fields chosen after training."""
        return {}

    @classmethod
    def after_training(cls, model: Model, data: TrainingSet, out: Path, *,
                       progress: bool = False) -> Model:
        """Choose the post-processing thresholds on the validation label images."""
        if (not getattr(model.config.method, "tune_thresholds", False)
                or data.val_targets is None or not cls.uses_instances(model.config)):
            return model
        from microsight.engine.tuning import apply_tuning, label_images, tune_postprocessing

        tuning = tune_postprocessing(model, data.val_inputs, label_images(data.val_targets),
                                     normalized=True, progress=progress)
        return apply_tuning(out, model, tuning)

    # --- training -------------------------------------------------------------------
    def prepare_batch(self, x: torch.Tensor, y: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if y is None:
            return x, y
        labels = torch.round(y[:, 0].float()).to(torch.int64).cpu().numpy()
        target = torch.from_numpy(np.ascontiguousarray(self.make_targets(labels)))
        return x, target.to(x.device)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        # Loss on the derived targets; the 'PSNR' is that of the first dense channel
        # (a probability), as a readable second curve.
        x, y = self.prepare_batch(*batch)
        out = self(x)
        n = y[:, :1].numel()
        self._val["loss"] += float(self.loss(out, y)) * n
        pred = self.point_estimate(out)[:, :1].float()
        self._val["sq"] += float(torch.sum((pred - y[:, :1].float()) ** 2))
        self._val["n"] += n

    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Images and their label images, inputs normalized, labels kept as they are."""
        name = cls.method_name
        if target_path is None:
            raise MicrosightError(
                f"method {name} learns from annotations: pass --target with label images "
                "named like the images (0 = background, one id per object)")
        if config.data.intensity_jitter > 0:
            raise MicrosightError(
                f"method {name} trains on label images, which an intensity gain would "
                "corrupt; set data.intensity_jitter: 0")
        ndim = len(config.data.patch_size)
        inputs, targets, summary = load_items(input_path, target_path, ndim=ndim,
                                              axes=axes or config.data.axes)
        if targets[0].shape[0] != 1:
            raise MicrosightError("label images must have a single channel (one id per pixel)")
        rng = np.random.default_rng(config.training.seed)
        for i, t in enumerate(targets):
            if np.any(t != np.round(t)) or t.min() < 0:
                raise MicrosightError(
                    f"target {summary['item_names'][i]} is not a label image: it needs whole "
                    "numbers >= 0 (0 = background)")
            if cls.uses_instances(config):
                targets[i] = relabel_random(t[0], rng)[None].astype(np.float32)
        summary["objects"] = int(sum(len(np.unique(t)) - 1 for t in targets)) \
            if cls.uses_instances(config) else None
        data = split_items(inputs, targets, val_fraction=config.data.val_fraction,
                           patch_size=config.data.patch_size, seed=config.training.seed)
        data.summary = {**summary, **data.summary}
        cls.fit_to_labels(config, data.train_targets)
        return data, normalize_inputs(data, config, cls.network_channels(config))

    @classmethod
    def fit_to_labels(cls, config: Configuration, labels: list[np.ndarray]) -> None:
        """Set data-dependent configuration (e.g. class weights) from the training labels."""

    # --- prediction -------------------------------------------------------------------
    @classmethod
    def segment(cls, model: Model, item: np.ndarray, settings: TileSettings | None = None
                ) -> Segmentation:
        """Segment one ``(C, *spatial)`` item held in memory."""
        shape = item.shape[1:]
        labels = np.zeros(shape, np.int32)
        probability = np.zeros((len(cls.prob_channels(model.config)), *shape), np.float32)

        def put_labels(region, block):
            labels[region] = block

        def put_prob(region, block):
            probability[(slice(None),) + region] = block

        stitcher = cls.run_item(model, lambda r: item[(slice(None),) + r], shape,
                                lambda: subsample(item), put_labels, put_prob, settings)
        return Segmentation(labels, probability, stitcher.table(),
                            stitcher.polygons or None)

    @classmethod
    def run_item(cls, model: Model, read: Callable[[tuple[slice, ...]], np.ndarray],
                 shape: tuple[int, ...], sample: Callable[[], np.ndarray],
                 put_labels: Callable, put_prob: Callable | None,
                 settings: TileSettings | None = None, advance: Callable | None = None
                 ) -> BlockStitcher:
        """Predict dense maps tile by tile and stitch objects block by block."""
        settings = settings or TileSettings.default(len(shape))
        x_norm = input_normalizer(model.normalization, sample)
        cfg = model.config
        m = cfg.method
        rest = int(np.prod(shape[1:]))
        block = max(m.block_pixels // max(rest, 1), m.block_margin)
        stitcher = BlockStitcher(shape, lambda d: cls.extract(cfg, d), block, m.block_margin,
                                 put_labels)
        channels = list(cls.prob_channels(cfg))

        def write(region, dense):
            if put_prob is not None:
                put_prob(region, dense[channels])
            stitcher.add(region, dense)

        TiledPredictor(model.module, settings).run(
            shape, lambda r: x_norm.apply(read(r)), write, advance=advance)
        return stitcher

    @classmethod
    def predict_image(cls, model: Model, image: Image, out: str | Path | None = None, *,
                      settings: TileSettings | None = None, progress: bool = False
                      ) -> np.ndarray | Path:
        """Segment every item of an image; stream labels (and side outputs) to disk.

        With ``out`` (``labels.tif``, ``labels.ome.zarr``, ``labels.png``), three
        more files are written next to it: ``<stem>_prob.<ext>`` (probability
        maps), ``<stem>_objects.csv`` (one row per object: label, area, score,
        seed position, box; an ``item`` column numbers the planes of a stack)
        and, for polygon methods, ``<stem>_polygons.geojson``.

        Returns
        -------
        numpy.ndarray or Path
            The label image (axes of the input without channels), or ``out``.
        """
        ndim = model.ndim
        name = image.path.name if image.path else "image"
        check_channels(image.axes, image.shape, model.module.in_channels, name)
        indices = item_indices(image.axes, image.shape, ndim, name)
        lab_axes = "".join(a for a in image.axes if a != "C")
        lab_shape = tuple(s for a, s in zip(image.axes, image.shape, strict=True) if a != "C")
        spatial = lab_shape[-ndim:]
        n_prob = len(cls.prob_channels(model.config))
        prob_axes = output_axes(lab_axes, n_prob)
        prob_shape = tuple(n_prob if a == "C" else dict(zip(lab_axes, lab_shape,
                                                            strict=True))[a] for a in prob_axes)
        result = np.zeros(lab_shape, np.int32) if out is None else None
        sinks = _open_outputs(out, lab_shape, lab_axes, prob_shape, prob_axes, image)
        tables, polygons = [], {}
        try:
            for n, index in enumerate(indices):
                def read(region, index=index):
                    block = read_item(image.data, image.axes, ndim, index, region)
                    if not np.isfinite(block).all():
                        raise MicrosightError(
                            f"{name} contains NaN or infinite values; replace them (e.g. "
                            "with 0) before predicting")
                    return block

                def put_labels(region, block, index=index):
                    key = write_key(lab_axes, ndim, index, region)
                    data = block.reshape([k.stop - k.start for k in key])
                    if sinks:
                        sinks[0].write(key, data)
                    else:
                        result[key] = data

                def put_prob(region, block, index=index):
                    key = write_key(prob_axes, ndim, index, region)
                    sinks[1].write(key, item_to_output(block, prob_axes, ndim))

                step = max(1, int(np.ceil((np.prod(spatial) / 4e6) ** (1 / ndim))))

                def sample(index=index, step=step):
                    return read_item(image.data, image.axes, ndim, index,
                                     (slice(None, None, step),) * ndim)

                stitcher = cls.run_item(model, read, spatial, sample, put_labels,
                                        put_prob if sinks else None, settings)
                table = stitcher.table()
                if len(indices) > 1:
                    table = {"item": np.full(len(table["label"]), n), **table}
                tables.append(table)
                polygons.update({(n, k): v for k, v in stitcher.polygons.items()})
        except BaseException:
            for s in sinks:
                s.abort()
            raise
        if out is None:
            return result
        for s in sinks:
            s.close()
        stem = _stem(Path(out))
        folder = Path(out).parent
        write_table(folder / f"{stem}{cls.table_suffix}",
                    {k: np.concatenate([t[k] for t in tables]) for k in tables[0]})
        if polygons:
            if len(indices) == 1:
                polys = {k[1]: v for k, v in polygons.items()}
            else:
                polys = {i + 1: v for i, v in enumerate(polygons.values())}
            write_geojson(folder / f"{stem}_polygons.geojson", polys)
        return Path(out)

    # --- evaluation -----------------------------------------------------------------
    @classmethod
    def baselines(cls, config: Configuration) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
        """The classical instance segmentation every report compares with."""
        m = config.method
        label = (f"Otsu + distance watershed (sigma {m.baseline_sigma:g}, seeds "
                 f">= {m.baseline_min_distance} px apart)")
        return {label: lambda x: classical_instances(
            x, sigma=m.baseline_sigma, min_distance=m.baseline_min_distance,
            min_size=m.min_size)}

    @classmethod
    def instance_labels(cls, model: Model, item: np.ndarray, settings: TileSettings | None
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        """Instance labels and probability maps of one item (for evaluation)."""
        seg = cls.segment(model, item, settings)
        return seg.labels, seg.probability

    @classmethod
    def evaluate_model(cls, model: Model, input: str | Path, target: str | Path, *,
                       axes: str | None = None, report: str | Path | None = None,
                       settings: TileSettings | None = None) -> Evaluation:
        """Instance metrics (AP, F1, PQ at IoU thresholds) of the network and the baseline.

        Rows are per image and source; the summary holds means over images (with
        bootstrap intervals) and the data-set scores (counts pooled over images).
        """
        inputs, targets, summary = load_items(input, target, ndim=model.ndim, axes=axes)
        sources = {"network": lambda x: cls.instance_labels(model, x, settings),
                   **{k: (lambda x, f=f: (f(x), None))
                      for k, f in cls.baselines(model.config).items()}}
        rows, panels, per_source = [], [], {s: [] for s in sources}
        for name, x, y in zip(summary["item_names"], inputs, targets, strict=True):
            truth = np.round(y[0]).astype(np.int64)
            for source, fn in sources.items():
                labels, prob = fn(x)
                res = matching(truth, labels, REPORT_THRESHOLDS)
                per_source[source].append(res)
                row = {"image": name, "source": source, **flat_scores(res),
                       "objects": int(res[0.5]["n_pred"]), "true objects":
                       int(res[0.5]["n_true"])}
                row.update(cls.extra_scores(model, x, truth, labels, prob, source))
                rows.append(row)
                if source == "network" and len(panels) < MAX_PANELS:
                    panels.append((name, x, truth, labels, prob))
        metrics = INSTANCE_METRICS + tuple(cls.extra_metrics(model))
        result = Evaluation(rows, summarize(rows, metrics))
        for row in result.summary:
            pooled = pool_matching(per_source[row["source"]])
            row.update({f"pooled {k}": v for k, v in flat_scores(pooled).items()
                        if k in INSTANCE_METRICS})
        if report is not None:
            curves = {s: pool_matching(r) for s, r in per_source.items()}
            result.report_path = cls.write_report(model, result, summary, panels, curves, report)
        return result

    @classmethod
    def extra_scores(cls, model: Model, item: np.ndarray, truth: np.ndarray,
                     labels: np.ndarray, prob: np.ndarray | None, source: str
                     ) -> dict[str, float]:
        """Further per-image scores of a method (none by default)."""
        return {}

    @classmethod
    def extra_metrics(cls, model: Model) -> tuple[str, ...]:
        """Names of the columns :meth:`extra_scores` adds."""
        return ()

    @classmethod
    def write_report(cls, model: Model, result: Evaluation, data_summary: dict[str, Any],
                     panels: list, curves: dict[str, dict], path: str | Path) -> Path:
        """HTML report: metrics, AP curves, example segmentations, history, configuration."""
        from microsight.qc import Report

        rep = Report(f"{model.config.name}: evaluation",
                     subtitle=f"method {cls.method_name} (instance segmentation)")
        rep.add_table("Test metrics (mean over images)", result.summary,
                      note="Objects matched one-to-one by IoU (Hungarian below 0.5); AP = TP / "
                           "(TP + FP + FN) as in the DSB 2018 and StarDist; PQ = panoptic "
                           "quality; 'pooled' sums the counts over all images.")
        rep.add_figure("Average precision over IoU thresholds (pooled)", ap_figure(curves))
        rep.add_key_values("Test data", {k: v for k, v in data_summary.items()
                                         if k != "item_names"})
        for name, x, truth, labels, prob in panels:
            images = {"input": np.asarray(x, np.float32).mean(axis=0),
                      "ground truth": label_display(truth), "network": label_display(labels)}
            if prob is not None:
                images["probability"] = prob[0]
            rep.add_image_panels(f"Example: {name}", images,
                                 cmaps={"ground truth": "tab20", "network": "tab20"})
        rep.add_table("Per-image metrics", result.rows)
        if model.history:
            rep.add_history("Training history", model.history)
        rep.add_key_values("Training", {k: v for k, v in model.qc.items() if k != "data"})
        rep.add_code("Configuration", config_to_yaml(model.config))
        return rep.write(path)


def flat_scores(res: dict[float, dict[str, float]]) -> dict[str, float]:
    """``{"ap@0.5": ..., "f1@0.5": ...}`` from :func:`matching` output."""
    out = {}
    for thr, s in res.items():
        for k in ("ap", "f1", "pq", "precision", "recall", "mean_matched_iou"):
            out[f"{k}@{thr:g}"] = float(s[k])
    return out


def ap_figure(curves: dict[str, dict[float, dict[str, float]]]) -> Any:
    """Matplotlib figure: pooled AP against the IoU threshold, one line per source."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    for source, res in curves.items():
        thr = sorted(res)
        ax.plot(thr, [res[t]["ap"] for t in thr], marker="o", label=source[:40])
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("AP = TP / (TP + FP + FN)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


_DOUBLE = (".ome.tiff", ".ome.tif", ".ome.zarr")


def _stem(path: Path) -> str:
    low = path.name.lower()
    for suffix in _DOUBLE:
        if low.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _suffix(path: Path) -> str:
    low = path.name.lower()
    for suffix in _DOUBLE:
        if low.endswith(suffix):
            return path.name[-len(suffix):]
    return path.suffix


def _open_outputs(out: str | Path | None, lab_shape: tuple[int, ...], lab_axes: str,
                  prob_shape: tuple[int, ...], prob_axes: str, image: Image) -> list:
    """Writers for the label image and the probability image next to it."""
    if out is None:
        return []
    out = Path(out)
    suffix = _suffix(out).lower()
    if suffix in (".jpg", ".jpeg"):
        raise MicrosightError(
            f"{out.name}: JPEG compression would change label ids; write .tif, .png or .zarr")
    if suffix == ".csv":
        raise MicrosightError(
            f"{out.name}: segmentation writes a label image (the object table goes next to "
            "it as <name>_objects.csv); give an output ending in .tif, .png or .ome.zarr")
    dtype = np.uint16 if suffix == ".png" else np.uint32
    sizes = {a: v for a, v in image.pixel_sizes.items() if a in lab_axes}
    labels = open_image_writer(out, lab_shape, dtype, lab_axes, sizes)
    prob_suffix = ".tif" if suffix == ".png" else _suffix(out)
    prob_path = out.parent / f"{_stem(out)}_prob{prob_suffix}"
    prob = open_image_writer(prob_path, prob_shape, np.float32, prob_axes, sizes)
    return [labels, prob]


__all__ = [
    "INSTANCE_METRICS",
    "BlockStitcher",
    "InstanceFields",
    "Objects",
    "Segmentation",
    "SegmentationModule",
    "classical_instances",
    "drop_small",
    "empty_objects",
    "export_objects",
    "flat_scores",
    "normalize_inputs",
]
