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

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microsight.config import Configuration
from microsight.data.baselines import classical_instances
from microsight.data.layout import (
    check_channels,
    finite_region_reader,
    item_indices,
    item_sampler,
    item_to_output,
    output_axes,
    write_key,
)
from microsight.data.normalization import subsample
from microsight.data.pairs import TrainingSet, load_items
from microsight.data.shapes import relabel_random
from microsight.data.split import load_and_split
from microsight.data.stitching import (
    BlockStitcher,
    Objects,
    Segmentation,
)
from microsight.engine.bundle import Model, load_model
from microsight.engine.evaluate import Evaluation, score_sources, summarize
from microsight.engine.module import MicrosightModule
from microsight.engine.predict import TiledPredictor, TileSettings, input_normalizer
from microsight.engine.progress import progress_bar
from microsight.engine.training import normalize_inputs
from microsight.errors import ColourWarning, MicrosightError
from microsight.families.segmentation.config import INSTANCE_METRICS
from microsight.families.segmentation.report import (
    flat_scores,
    open_outputs,
    write_segmentation_report,
)
from microsight.io import Image
from microsight.io.image import image_stem
from microsight.io.shapes import write_geojson, write_table
from microsight.metrics.segmentation import matching, pool_matching

REPORT_THRESHOLDS = tuple(sorted({round(0.1 * k, 1) for k in range(1, 10)} | {0.75}))
MAX_PANELS = 3

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
    #: Validation scores the objects themselves: AP at IoU 0.5 over the validation
    #: tiles, with the configured thresholds (those chosen after training may do better).
    val_metrics = ("val_ap@0.5",)
    #: An 8-bit colour image is made grey for a one-channel network (H&E nuclei).
    grey_colour = True

    def __init__(self, config: Configuration, in_channels: int = 1, out_channels: int = 1):
        # The bundle stores the label targets' single channel; the network's own
        # output channels follow from the method's configuration.
        super().__init__(config, in_channels, self.network_channels(config))

    @classmethod
    def input_image(cls, model: Model, image: Image) -> Image:
        """A colour (8-bit RGB) image is made grey for a model that takes one channel.

        Nucleus models for stained tissue (H&E) are trained on grey versions of colour
        images; converting here spares users a step, and says so.
        """
        import warnings

        from microsight.io.image import colour_to_grey

        if not cls.makes_grey(model, image):
            return image
        name = image.path.name if image.path else "the image"
        warnings.warn(f"{name} is a colour image and the model takes one channel: it was "
                      "made grey (the mean of R, G and B) before predicting",
                      ColourWarning, stacklevel=2)
        return colour_to_grey(image)

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
        from microsight.families.segmentation.tuning import (
            apply_tuning,
            label_images,
            tune_postprocessing,
        )

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

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._val_matches: list[dict[float, dict[str, float]]] = []

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        # Loss on the derived targets; the base 'PSNR' of the first dense channel (a
        # probability) is kept out of sight; the objects are scored as AP@0.5.
        x, y = self.prepare_batch(*batch)
        out = self(x)
        n = y[:, :1].numel()
        self._val["loss"] += float(self.loss(out, y)) * n
        dense = self.point_estimate(out).float()
        self._val["sq"] += float(torch.sum((dense[:, :1] - y[:, :1]) ** 2))
        self._val["n"] += n
        if "val_ap@0.5" in self.val_metrics:
            labels = torch.round(batch[1][:, 0].float()).to(torch.int64).cpu().numpy()
            for truth, maps in zip(labels, dense.cpu().numpy(), strict=True):
                found = type(self).extract(self.config, maps).labels
                self._val_matches.append(matching(truth, found, 0.5))

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if "val_ap@0.5" in self.val_metrics and self._val_matches:
            self.log("val_ap@0.5", pool_matching(self._val_matches)[0.5]["ap"],
                     prog_bar=True)

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
        rng = np.random.default_rng(config.training.seed)
        relabeled: dict[bytes, np.ndarray] = {}

        grey = cls.base_takes_one_channel(config)

        def load(images: str | Path, labels: str | Path):
            inputs, targets, summary = load_items(images, labels, ndim=ndim,
                                                  axes=axes or config.data.axes,
                                                  grey_colour=grey)
            if targets[0].shape[0] != 1:
                raise MicrosightError(
                    "label images must have a single channel (one id per pixel)")
            for i, t in enumerate(targets):
                if np.any(t != np.round(t)) or t.min() < 0:
                    raise MicrosightError(
                        f"target {summary['item_names'][i]} is not a label image: it needs "
                        "whole numbers >= 0 (0 = background)")
                if cls.uses_instances(config):
                    # One annotation shared by several captures stays identical, so that
                    # the split keeps those captures together.
                    key = hashlib.blake2b(t.tobytes(), digest_size=16).digest()
                    if key not in relabeled:
                        relabeled[key] = relabel_random(t[0], rng)[None].astype(np.float32)
                    targets[i] = relabeled[key]
            summary["objects"] = int(sum(len(np.unique(t)) - 1 for t in targets)) \
                if cls.uses_instances(config) else None
            return inputs, targets, summary

        data = load_and_split(config, load, input_path, target_path)
        cls.fit_to_labels(config, data.train_targets)
        return data, normalize_inputs(data, config, cls.network_channels(config))

    @staticmethod
    def base_takes_one_channel(config: Configuration) -> bool:
        """Whether fine-tuning starts from a one-channel model (colour inputs go grey)."""
        if not config.training.init_from:
            return False  # from scratch, colour images make a colour model
        return load_model(config.training.init_from).module.in_channels == 1

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
        settings = settings or TileSettings.default(len(spatial))
        tiles = TiledPredictor(model.module, settings).n_tiles(spatial)
        sinks = open_outputs(out, lab_shape, lab_axes, prob_shape, prob_axes, image)
        tables, polygons = [], {}
        # Objects are found block by block as the tiles come in: one bar for both.
        bar = progress_bar(progress)
        task = bar.add_task(f"segmenting {name}", total=len(indices) * tiles)
        try:
            bar.start()
            for n, index in enumerate(indices):
                read = finite_region_reader(image.data, image.axes, ndim, index, name)
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

                sample = item_sampler(image.data, image.axes, ndim, index, spatial)
                stitcher = cls.run_item(model, read, spatial, sample, put_labels,
                                        put_prob if sinks else None, settings,
                                        advance=lambda k: bar.advance(task, k))
                table = stitcher.table()
                if len(indices) > 1:
                    table = {"item": np.full(len(table["label"]), n), **table}
                tables.append(table)
                polygons.update({(n, k): v for k, v in stitcher.polygons.items()})
        except BaseException:
            for s in sinks:
                s.abort()
            raise
        finally:
            bar.stop()
        if out is None:
            return result
        for s in sinks:
            s.close()
        stem = image_stem(Path(out))
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
        # Otsu keeps the bright side: dark objects (inverted inputs) are negated first.
        sign = -1 if config.data.normalization.invert else 1
        label = (f"Otsu + distance watershed (sigma {m.baseline_sigma:g}, seeds "
                 f">= {m.baseline_min_distance} px apart{', inverted' if sign < 0 else ''})")
        return {label: lambda x: classical_instances(
            sign * x, sigma=m.baseline_sigma, min_distance=m.baseline_min_distance,
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
        inputs, targets, summary = load_items(input, target, ndim=model.ndim, axes=axes,
                                              grey_colour=model.module.in_channels == 1)
        sources = {"network": lambda x: cls.instance_labels(model, x, settings),
                   **{k: (lambda x, f=f: (f(x), None))
                      for k, f in cls.baselines(model.config).items()}}

        def score(out: Any, truth: np.ndarray, source: str, x: np.ndarray
                  ) -> tuple[dict[str, Any], Any]:
            labels, prob = out
            res = matching(truth, labels, REPORT_THRESHOLDS)
            row = {**flat_scores(res), "objects": int(res[0.5]["n_pred"]),
                   "true objects": int(res[0.5]["n_true"]),
                   **cls.extra_scores(model, x, truth, labels, prob, source)}
            return row, res

        items = [(name, x, np.round(y[0]).astype(np.int64))
                 for name, x, y in zip(summary["item_names"], inputs, targets, strict=True)]
        scored = score_sources(items, sources, score,
                               panel=lambda name, x, out, truth: (name, x, truth, *out))
        rows, panels, per_source = scored.rows, scored.panels, scored.extras
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
        return write_segmentation_report(cls.method_name, model, result, data_summary, panels,
                                         curves, path)
