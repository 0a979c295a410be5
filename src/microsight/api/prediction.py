"""Apply models to images, folders of images and large images (over workers)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from microsight.api.models import ModelLike, _as_model, _foreign_package
from microsight.api.written import written_files
from microsight.config import (
    get_method,
)
from microsight.data.pairs import check_complex
from microsight.engine.bundle import Model
from microsight.engine.checks import (
    IncompleteModelWarning as IncompleteModelWarning,
)
from microsight.engine.checks import (
    check_image_size,
    check_tiling,
    warn_if_incomplete,
)
from microsight.engine.ood import (
    score_image,
    warn_if_outside,
    write_sidecar,
)
from microsight.engine.predict import TileSettings
from microsight.engine.progress import Callback, CancelSignal, Monitor, ProgressEvent
from microsight.engine.uncertainty import MODES as UNCERTAINTY_MODES
from microsight.engine.uncertainty import combine, uncertainty_path
from microsight.errors import MicrosightError
from microsight.io import Image, read_image
from microsight.io.outputs import check_output
from microsight.io.readers import as_image


def _tile_settings(model: Model, tile: int | None, overlap: int | None,
                   batch_size: int | None, monitor: Monitor | None = None) -> TileSettings:
    return TileSettings.default(model.ndim, tile, overlap, batch_size, monitor)


def _uncertainty_request(uncertainty: str | Path | bool | None, out: str | Path | None
                         ) -> tuple[str | None, str | Path | bool | None]:
    """(mode, where): the mode, and a path to write the map to or True to return it."""
    if uncertainty is None or uncertainty is False:
        return None, None
    if isinstance(uncertainty, str) and uncertainty in UNCERTAINTY_MODES:
        return uncertainty, uncertainty_path(out) if out is not None else True
    # True or a path: the model's own uncertainty output (probabilistic models).
    return "model", uncertainty


def predict(
    model: ModelLike | list[ModelLike],
    image: str | Path | np.ndarray | Image,
    *,
    out: str | Path | None = None,
    axes: str | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    uncertainty: str | Path | bool | None = None,
    tta: bool = False,
    check: bool = True,
    callback: Callback | None = None,
    cancel: CancelSignal | None = None,
    scene: int | None = None,
    rois: str | Path | None = None,
    overwrite: bool = False,
) -> np.ndarray | Path | tuple:
    """Apply a model to an image (file, array or :class:`~microsight.io.Image`).

    Parameters
    ----------
    model : Model, str or Path, or a list of them
        Loaded model or bundle path; several models predict as an ensemble (the
        mean of their predictions).
    image : str, Path, numpy.ndarray or Image
        The input. Arrays need ``axes`` unless 2D (``YX``).
    out : str or Path, optional
        Output file (.tif, .ome.tif, .ome.zarr, ...). Without it the result is
        returned as an array.
    axes : str, optional
        Axes of the input, overriding its metadata.
    tile, overlap, batch_size : int, optional
        Tiling of the prediction (tile edge in pixels, overlap, tiles per pass).
    progress : bool
        Show a progress bar.
    uncertainty : str, Path or bool, optional
        Also compute a per-pixel uncertainty map (intensity units): ``"model"``
        (the Laplace scale of a model trained with ``probabilistic: true``),
        ``"tta"`` (standard deviation over the 8 flips/rotations) or
        ``"ensemble"`` (standard deviation over several models). With ``out`` the
        map is written next to it (``name.uncertainty.tif``), else returned. A
        path (or ``True``) asks for the model's own uncertainty, written there
        (or returned).
    tta : bool
        Predict the mean over the 8 flips/rotations of the image (test-time
        augmentation): slower (8 passes), usually a little more accurate. For
        segmentation the averaged maps are then turned into objects; not for
        methods whose outputs are tied to directions (star-convex rays, SMLM
        offsets).
    check : bool
        Score the image against the model's training-data description: a
        :class:`OutOfDistributionWarning` when it lies outside, and with ``out``
        a record ``<out>.qc.json`` next to the output.
    callback : callable, optional
        Called with a :class:`~microsight.engine.progress.ProgressEvent` as tiles
        are done, then once per file written (kind ``"written"``, ``metrics``
        holding its ``path`` and ``what`` it holds), main output first.
    cancel : threading.Event or similar, optional
        When set, prediction stops after the running tiles, writes nothing and
        raises :class:`~microsight.errors.Cancelled`.
    scene : int, optional
        Scene of a multi-scene ND2/LIF/CZI file (0-based; default the first, with
        a :class:`SceneWarning` when there are several).
    rois : str or Path, optional
        Segmentation only: also write the objects' outlines as an ImageJ/Fiji ROI
        set (``.zip``, e.g. ``cells.roi.zip``; needs ``microsight[formats]``).
    overwrite : bool
        Replace an existing ``out`` (never an input, never a folder that is not
        an image).

    Returns
    -------
    numpy.ndarray or Path
        The prediction in the input's axes, or the path written; with
        ``uncertainty``, the pair ``(prediction, uncertainty)``.
    """
    check_tiling(tile, overlap, batch_size)
    sources = [m for m in (model if isinstance(model, (list, tuple)) else [model])]
    mode, where = _uncertainty_request(uncertainty, out)
    if out is not None:
        inputs = [*sources, image if isinstance(image, (str, Path)) else None]
        for path, option in ((out, "--out"), (where, "--uncertainty"), (rois, "--rois")):
            if isinstance(path, (str, Path)):
                check_output(path, inputs=inputs, kind="image", overwrite=overwrite,
                             option=option)
    if isinstance(model, (str, Path)) and _foreign_package(model):
        from microsight.engine.bioimageio_run import predict_package

        if rois is not None or uncertainty is not None or tta:
            raise MicrosightError("a BioImage Model Zoo package not made by microsight "
                                  "predicts plainly: leave out --rois, --uncertainty, --tta")
        return predict_package(model, as_image(image, axes, scene), out, tile=tile,
                               overlap=overlap, batch_size=batch_size, progress=progress,
                               monitor=Monitor(callback, cancel))
    models = [_as_model(m) for m in sources]
    if not models:
        raise MicrosightError("no model given")
    model = models[0]
    warn_if_incomplete(models)
    if rois is not None:
        from microsight.engine.rois import check_rois_request

        check_rois_request(model, rois)
    image = as_image(image, axes, scene)
    check_complex(image)
    check_image_size(image)
    image = type(model.module).input_image(model, image)
    monitor = Monitor(callback, cancel)
    settings = _tile_settings(model, tile, overlap, batch_size, monitor)
    name = image.path.name if image.path else "the image"
    report = score_image(model, image) if check else {"available": False, "note": "not asked"}
    warn_if_outside(report, name)
    spec = get_method(model.method)
    if mode is not None and not spec.uncertainty_maps:
        raise MicrosightError(f"method {model.method} writes no uncertainty map; leave "
                              "out --uncertainty")
    if (len(models) > 1 or tta) and not spec.ensembles:
        raise MicrosightError(f"method {model.method} has no ensemble or tta prediction; "
                              "give one model without --tta")
    predictor = spec.part("predictor")
    extra = {"uncertainty": where} if spec.uncertainty_maps else {}
    started = time.time()
    result = predictor(combine(models, mode, tta), image, out, settings=settings,
                       progress=progress, **extra)
    if rois is not None:
        from microsight.engine.rois import write_prediction_rois

        write_prediction_rois(result, image.axes, out, rois)
    if out is not None and check:
        write_sidecar(out, {
            "image": str(image.path) if image.path else None,
            "models": [str(m.path) if m.path else m.config.name for m in models],
            "out_of_distribution": report,
            "uncertainty": None if mode is None else {
                "mode": mode, "map": str(where) if isinstance(where, (str, Path)) else None}})
    if out is not None:
        for item in written_files(spec, out, since=started, rois=rois,
                                  uncertainty=where if isinstance(where, (str, Path)) else None):
            monitor.report(ProgressEvent("written", 0, metrics={"path": str(item.path),
                                                                "what": item.what}))
    return result


def _predict_file(model: Model, image: str | Path, out: Path, **options: Any) -> Path:
    """One image of a folder (a task of :func:`predict_folder`, possibly on a worker)."""
    return predict(model, image, out=out, progress=False, **options)


def predict_folder(model: ModelLike, in_folder: str | Path, out_folder: str | Path, *,
                   workers: int | None = None, scheduler: str | None = None,
                   resume: bool = False, callback: Callback | None = None,
                   axes: str | None = None, tile: int | None = None,
                   overlap: int | None = None, batch_size: int | None = None,
                   check: bool = True, progress: bool = False):
    """Predict every image of a folder into another, here or over a Dask cluster.

    Outputs are named after their inputs (same format) with the side files a
    single prediction writes; files that are not images are skipped and noted.
    An existing output is never overwritten: it is refused, or with ``resume``
    its image is skipped as finished.

    Parameters
    ----------
    model : Model, str or Path
        Model or bundle path (workers load the bundle once each).
    in_folder, out_folder : str or Path
        Folder of images; folder of outputs (created).
    workers : int, optional
        Start a local Dask cluster of this many processes (``pip install
        "microsight[dask]"``).
    scheduler : str, optional
        Address of an existing Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
    resume : bool
        Skip images whose output exists (a re-run after an interruption).
    callback : callable, optional
        Called with ``ProgressEvent("images", done, total)`` as images finish.
    axes, tile, overlap, batch_size, check
        As in :func:`predict`, for every image.
    progress : bool
        Show one progress bar over the images.

    Returns
    -------
    microsight.engine.distributed.FolderResult
        One row per input (written, skipped, failed, not an image) with its
        outputs, time, worker and notes.
    """
    from microsight.engine.distributed import predict_folder as run

    options = {"axes": axes, "tile": tile, "overlap": overlap, "batch_size": batch_size,
               "check": check}
    return run(_predict_file, model, in_folder, out_folder, workers=workers,
               scheduler=scheduler, resume=resume, options=options, progress=progress,
               callback=callback)


def predict_large(model: ModelLike, image: str | Path, out: str | Path, *,
                  workers: int | None = None, scheduler: str | None = None,
                  axes: str | None = None, tile: int | None = None,
                  overlap: int | None = None, batch_size: int | None = None,
                  rows: int | None = None, check: bool = True, progress: bool = False
                  ) -> Path:
    """Predict one large image over a Dask cluster, in blocks of rows, into OME-Zarr.

    The result equals the single-process :func:`predict` (float tolerance);
    segmentation objects are stitched across block borders as in one process,
    with their table and probability image next to ``out``.

    Parameters
    ----------
    model : Model, str or Path
        Model or bundle path.
    image : str or Path
        Large image (OME-Zarr, or TIFF) holding one item.
    out : str or Path
        Output ``.ome.zarr``; each worker writes its own chunks.
    workers, scheduler
        A local cluster of ``workers`` processes, or an existing scheduler.
    axes, tile, overlap, batch_size
        As in :func:`predict`.
    rows : int, optional
        Rows (planes in 3D) per block and output chunk (default 1024; 64 in 3D).
    check : bool
        Out-of-distribution check as in :func:`predict` (warning, ``<out>.qc.json``).
    progress : bool
        Show a progress bar over the rows.

    Returns
    -------
    Path
    """
    from rich.progress import Progress

    from microsight.config.registry import TILED_PREDICTOR
    from microsight.engine.distributed import bundle_path, dask_client

    loaded = _as_model(model)
    spec = get_method(loaded.method)
    if spec.family == "segmentation":
        from microsight.families.segmentation.distributed import segment_blocks as run
    elif spec.predictor == TILED_PREDICTOR:
        from microsight.engine.blocks import predict_image_blocks as run
    else:
        raise MicrosightError(f"method {loaded.method} cannot predict over workers in "
                              "blocks; predict it in one process")
    settings = _tile_settings(loaded, tile, overlap, batch_size)
    report = score_image(loaded, read_image(image, axes=axes)) if check else None
    if report is not None:
        warn_if_outside(report, Path(image).name)
    bundle = str(bundle_path(model))
    with dask_client(workers, scheduler) as client, Progress(disable=not progress) as bar:
        task = bar.add_task(f"predicting {Path(image).name}", total=None)
        written = run(client, loaded, bundle, image, out, axes=axes, settings=settings,
                      rows=rows, advance=lambda n: bar.advance(task, n))
    if report is not None:
        write_sidecar(written, {"image": str(image), "models": [bundle],
                                "out_of_distribution": report, "uncertainty": None})
    return written
