"""The public Python API: train, predict, evaluate, load and describe models.

The command line and any GUI call only these functions::

    from microsight import train, predict, evaluate, load_model
    model = train("care", "low/", "high/", out="models/care1", epochs=10)
    restored = predict(model, "big.tif")                 # numpy array
    predict("models/care1", "big.ome.zarr", out="restored.ome.zarr")
    evaluate(model, "test_low/", "test_high/", report="report.html")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from microsight.config import (
    Configuration,
    MethodSpec,
    available_methods,
    get_method,
    load_config,
    merge_overrides,
    validate_config,
)
from microsight.data.pairs import check_complex
from microsight.engine.bundle import Model, zip_bundle
from microsight.engine.bundle import load_model as _load_bundle
from microsight.engine.checks import (
    IncompleteModelWarning as IncompleteModelWarning,
)
from microsight.engine.checks import (
    check_counts,
    check_image_size,
    check_tiling,
    require_label_images,
    warn_if_incomplete,
)
from microsight.engine.evaluate import Evaluation
from microsight.engine.ood import (
    score_image,
    warn_if_outside,
    write_sidecar,
)
from microsight.engine.predict import TileSettings
from microsight.engine.progress import Callback, CancelSignal, Monitor
from microsight.engine.training import train_model
from microsight.engine.uncertainty import MODES as UNCERTAINTY_MODES
from microsight.engine.uncertainty import combine, uncertainty_path
from microsight.errors import Cancelled as Cancelled
from microsight.errors import MicrosightError
from microsight.errors import OutOfDistributionWarning as OutOfDistributionWarning
from microsight.io import Image
from microsight.io import read_image as read_image
from microsight.io.image import image_stem
from microsight.io.outputs import check_output
from microsight.io.readers import as_image
from microsight.io.vendor import SceneWarning as SceneWarning
from microsight.qc.verdict import network_verdict

ModelLike = Model | str | Path


def load_model(path: str | Path) -> Model:
    """Load a model bundle (folder or .zip); never unpickles.

    Parameters
    ----------
    path : str or Path
        Bundle folder or .zip written by :func:`train` / :func:`export`.

    Returns
    -------
    Model
    """
    if _foreign_package(path):
        raise MicrosightError(f"{Path(path).name} is a BioImage Model Zoo package not made by "
                              "microsight: it can predict (microsight predict PACKAGE IMAGE) "
                              "but not be loaded, described, evaluated or fine-tuned")
    return _load_bundle(path)


def _foreign_package(path: str | Path) -> bool:
    """A BioImage Model Zoo package that carries no microsight bundle."""
    from microsight.engine.bioimageio import is_microsight_package, is_package

    return is_package(path) and not is_microsight_package(path)


def _as_model(model: ModelLike) -> Model:
    return model if isinstance(model, Model) else load_model(model)


def build_config(method: str, config: str | Path | dict | Configuration | None = None,
                 **overrides: Any) -> Configuration:
    """Assemble a configuration from a method name, an optional file/dict and overrides.

    Parameters
    ----------
    method : str
        Registered method name.
    config : str, Path, dict or Configuration, optional
        Base configuration (YAML file, nested dict or object).
    **overrides
        Nested sections to merge, e.g. ``training={"epochs": 5}``; ``None`` values
        are ignored.

    Returns
    -------
    Configuration
    """
    get_method(method)
    if isinstance(config, Configuration):
        base = config.model_dump(mode="json")
    elif isinstance(config, (str, Path)):
        base = load_config(config).model_dump(mode="json")
    else:
        base = dict(config or {})
    base.setdefault("method", {"method": method})
    if isinstance(base["method"], str):
        base["method"] = {"method": base["method"]}
    if base["method"].get("method") != method:
        raise MicrosightError(
            f"the config is for method {base['method'].get('method')!r} but you asked to "
            f"train {method!r}"
        )
    return validate_config(merge_overrides(base, overrides))


def train(
    method: str,
    input: str | Path,
    target: str | Path | None = None,
    *,
    out: str | Path,
    config: str | Path | dict | Configuration | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    axes: str | None = None,
    resume: bool = False,
    init_from: str | Path | None = None,
    progress: bool = True,
    callback: Callback | None = None,
    cancel: CancelSignal | None = None,
    devices: int | None = None,
    num_nodes: int | None = None,
) -> Model:
    """Train a model and write its bundle to ``out``.

    ``out`` must be a new or empty folder, or (with ``resume``) a model of an
    interrupted run; it may not be or hold an input.

    Parameters
    ----------
    method : str
        Method name (see :func:`methods`).
    input, target : str or Path
        Training inputs and targets: files or folders paired by file name.
    out : str or Path
        Bundle folder. Updated after every epoch, so an interrupted run keeps
        its best model and can continue with ``resume=True``.
    config : str, Path, dict or Configuration, optional
        Configuration (defaults suit a laptop CPU).
    epochs, steps : int, optional
        Override the number of epochs, or stop after this many optimizer steps.
    axes : str, optional
        Axes of the input files when their metadata do not say.
    resume : bool
        Continue the interrupted training in ``out`` (its saved config is used).
    init_from : str or Path, optional
        Start from this model's weights (fine-tuning on new data); it must be the
        same method with the same network fields. Lower the learning rate with it.
    progress : bool
        Show a progress bar.
    callback : callable, optional
        Called with a :class:`~microsight.engine.progress.ProgressEvent` after every
        step and every epoch (live curves in a GUI).
    cancel : threading.Event or similar, optional
        When set, training stops after the running step and raises
        :class:`~microsight.errors.Cancelled`; ``out`` keeps the last complete
        epoch and continues with ``resume=True``.
    devices, num_nodes : int, optional
        Train on several devices (GPUs, or CPU processes) and machines at once with
        distributed data parallel (``training.devices``, ``training.num_nodes``);
        the first process writes the bundle.

    Returns
    -------
    Model
    """
    check_counts(epochs=epochs, steps=steps)
    check_output(out, inputs=[input, target, config if isinstance(config, (str, Path)) else None,
                              init_from], kind="bundle")
    training = {"epochs": epochs, "max_steps": steps, "devices": devices,
                "num_nodes": num_nodes,
                "init_from": None if init_from is None else str(init_from)}
    if resume:
        saved = Path(out) / "config.yaml"
        if not saved.is_file():
            raise MicrosightError(f"nothing to resume: {saved} does not exist")
        cfg = build_config(method, saved, training=training)
    else:
        cfg = build_config(method, config, training=training)
    if steps and not epochs:
        # --steps alone: spread the budget over whole epochs so that training ends on an
        # epoch boundary, right after a validation.
        n_epochs = -(-steps // cfg.training.steps_per_epoch)
        cfg.training.steps_per_epoch = -(-steps // n_epochs)
        cfg.training.epochs = n_epochs
        if n_epochs * cfg.training.steps_per_epoch == steps:
            # Whole epochs make the budget exactly; a step limit as well would be
            # redundant, and Lightning replays an epoch's end when resuming under one.
            cfg.training.max_steps = None
    # Every part is checked before any data is read: an incomplete method fails at once.
    spec = get_method(method).load()
    _check_target(spec, target)
    data, normalization = spec.part("training_data")(cfg, input, target, axes)
    return train_model(cfg, data, normalization, out, resume=resume, progress=progress,
                       monitor=Monitor(callback, cancel))


def _check_target(spec: MethodSpec, target: str | Path | None) -> None:
    """Refuse a missing or superfluous target as the method declares it."""
    if spec.needs_target is True and target is None:
        raise MicrosightError(f"method {spec.name} needs --target ({spec.summary}); pass "
                              "the images or annotations it should learn from")
    if spec.needs_target is False and target is not None:
        raise MicrosightError(f"method {spec.name} takes no --target ({spec.summary}); "
                              "drop --target")


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
        are done.
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
        from microsight.engine.bioimageio import predict_package

        if rois is not None or uncertainty is not None or tta:
            raise MicrosightError("a BioImage Model Zoo package not made by microsight "
                                  "predicts plainly: leave out --rois, --uncertainty, --tta")
        return predict_package(model, as_image(image, axes, scene), out)
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
    settings = _tile_settings(model, tile, overlap, batch_size, Monitor(callback, cancel))
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


def evaluate(
    model: ModelLike | list[ModelLike],
    input: str | Path,
    target: str | Path,
    *,
    report: str | Path | None = None,
    axes: str | None = None,
    tile: int | None = None,
    tta: bool = False,
    overwrite: bool = False,
) -> Evaluation:
    """Score a model on held-out pairs against classical baselines; write a report.

    Parameters
    ----------
    model : Model, str or Path, or a list of them
        Loaded model or bundle path; several models are scored as an ensemble
        (the mean of their predictions), e.g. to check that it beats its members.
    input, target : str or Path
        Held-out inputs and ground truth (files or folders paired by name).
    report : str or Path, optional
        Report to write: HTML, or a PDF when the path ends in ``.pdf``.
    axes : str, optional
        Axes override.
    tile : int, optional
        Prediction tile size.
    tta : bool
        Score the mean prediction over the 8 flips/rotations (as ``predict``).
    overwrite : bool
        Replace an existing ``report``.

    Returns
    -------
    Evaluation
        Per-image rows and the mean of each metric per source.
    """
    check_tiling(tile, None, None)
    sources = list(model if isinstance(model, (list, tuple)) else [model])
    if report is not None:
        if Path(report).suffix.lower() not in (".html", ".htm", ".pdf"):
            raise MicrosightError(f"--report {report}: the report is HTML or PDF; give a path "
                                  "ending in .html or .pdf")
        check_output(report, inputs=[*sources, input, target], overwrite=overwrite,
                     option="--report")
    models = [_as_model(m) for m in sources]
    if not models:
        raise MicrosightError("no model given")
    warn_if_incomplete(models)
    # The first member's method scores the combined prediction.
    spec = get_method(models[0].method)
    if spec.outputs[0] == "labels":
        require_label_images(target, axes)
    evaluator = spec.part("evaluator")
    model = combine(models, None, tta)
    settings = _tile_settings(model, tile, None, None)
    result = evaluator(model, input, target, axes=axes, report=report, settings=settings)
    result.verdict = network_verdict(result.rows, get_method(models[0].method).metrics[0])
    return result


def tune(model: str | Path, input: str | Path, target: str | Path, *,
         axes: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Choose a segmentation model's post-processing thresholds on annotated images.

    Training already chooses them on its validation images; tune again when your
    images differ from those (another microscope, stain or magnification). Use
    annotated images apart from the ones you will report test scores on.

    Parameters
    ----------
    model : str or Path
        Bundle folder (its ``config.yaml`` and ``qc.json`` are updated).
    input, target : str or Path
        Images and their instance label images (files or folders paired by name).
    axes : str, optional
        Axes override.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The chosen ``params`` and their ``score``, the previous values and theirs,
        and the number of images and objects.
    """
    from microsight.data.pairs import load_items
    from microsight.families.segmentation.tuning import (
        apply_tuning,
        label_images,
        tune_postprocessing,
    )

    folder = Path(model)
    if not folder.is_dir():
        raise MicrosightError(f"{folder} is not a model folder; tuning rewrites the bundle, "
                              "so give the folder (unpack a .zip first)")
    loaded = load_model(folder)
    items, targets, _ = load_items(input, target, ndim=len(loaded.config.data.patch_size),
                                   axes=axes or loaded.config.data.axes)
    result = tune_postprocessing(loaded, items, label_images(targets), progress=progress)
    if result is None:
        raise MicrosightError(
            f"nothing to tune: method {loaded.config.method.method} has no post-processing "
            "thresholds, or the label images hold no objects")
    apply_tuning(folder, loaded, result)
    return result.to_dict()


def info(model: ModelLike) -> dict[str, Any]:
    """Describe a model: config, training data, history and QC summary.

    Returns
    -------
    dict
        ``{"model": ..., "config": ..., "data": ..., "qc": ..., "history": [...]}``.
    """
    model = _as_model(model)
    qc = dict(model.qc)
    data = qc.pop("data", {})
    data.pop("item_names", None)
    return {"model": model.info, "config": model.config.model_dump(mode="json"),
            "data": data, "qc": qc, "normalization": model.normalization,
            "history": model.history}


def export(model: ModelLike, path: str | Path, *, format: str = "zip",
           overwrite: bool = False) -> Path:
    """Pack a model into one file: a microsight .zip, TorchScript or ONNX.

    Parameters
    ----------
    model : Model, str or Path
        Bundle folder (``zip``), or any model (``torchscript``, ``onnx``).
    path : str or Path
        File to write. An existing file is replaced only with ``overwrite``; a
        folder never.
    format : {"zip", "torchscript", "onnx", "bioimageio"}
        ``zip``: the bundle :func:`load_model` reads. ``torchscript``/``onnx``: the
        network alone, checked against microsight's output (metadata inside the
        file). ``bioimageio``: a BioImage Model Zoo package, test-run before writing.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    Path
    """
    check_output(path, inputs=[model if isinstance(model, (str, Path)) else None],
                 overwrite=overwrite, option="export to")
    if format == "zip":
        if isinstance(model, Model):
            raise MicrosightError("give the model folder to pack it as a .zip")
        return zip_bundle(model, path)
    if format == "bioimageio":
        from microsight.engine.bioimageio import export_package

        return export_package(_as_model(model), path)
    from microsight.engine.export import export_network

    return export_network(_as_model(model), path, format)[0]


def methods() -> dict[str, str]:
    """Registered methods and their one-line summaries."""
    return {name: m.summary for name, m in available_methods().items()}


def config_template(method: str) -> str:
    """Default configuration of ``method`` as YAML, each field's description a comment."""
    from microsight.config.describe import config_yaml

    return config_yaml(method)


def config_schema(method: str) -> dict[str, Any]:
    """JSON Schema of ``method``'s whole configuration (to render a settings form)."""
    from microsight.config.describe import config_schema as schema

    return schema(method)


def check_config(path: str | Path) -> list[str]:
    """Problems of a YAML configuration file, one line each (empty when valid)."""
    from microsight.config.describe import check_config_file

    return check_config_file(path)


def simulate_smlm(out: str | Path, table: str | Path | None = None, *,
                  config: str | Path | dict | None = None, sites: str | Path | None = None,
                  table_format: str = "native", overwrite: bool = False,
                  **overrides: Any) -> tuple[Path, Path]:
    """Simulate an SMLM movie and write it with its ground-truth localization table.

    Parameters
    ----------
    out : str or Path
        Movie to write (``.tif``, ``.ome.tif`` or ``.ome.zarr``; axes TYX, ADU).
    table : str or Path, optional
        Ground-truth CSV (default: ``out`` with ``.csv``).
    config : str, Path or dict, optional
        Simulation settings (YAML file or dict of
        :class:`microsight.data.smlm.SimulationConfig` fields).
    sites : str or Path, optional
        Localization table whose positions are the binding sites (structure
        ``table``).
    table_format : {"native", "thunderstorm"}
        Columns of the ground-truth CSV.
    overwrite : bool
        Replace an existing movie or table.
    **overrides
        Settings that replace those of ``config`` (``None`` values are ignored),
        e.g. ``density=2.0, frames=500``; ``camera`` takes a dict.

    Returns
    -------
    tuple of Path
        The movie and the table written.
    """
    from pydantic import ValidationError

    from microsight.config import format_errors
    from microsight.data.smlm import SimulationConfig, simulate
    from microsight.io import write_image
    from microsight.io.localizations import read_localizations, write_localizations

    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise MicrosightError(f"simulation config {path} not found")
        config = yaml.safe_load(path.read_text()) or {}
    settings = merge_overrides(dict(config or {}), overrides)
    if sites is not None:
        settings.setdefault("structure", "table")
    try:
        cfg = SimulationConfig.model_validate(settings)
    except ValidationError as exc:
        raise MicrosightError(f"invalid simulation settings: {format_errors(exc)}") from None
    out = Path(out)
    table = Path(table) if table is not None else out.with_name(image_stem(out) + ".csv")
    inputs = [sites, config if isinstance(config, (str, Path)) else None]
    check_output(out, inputs=inputs, kind="image", overwrite=overwrite)
    check_output(table, inputs=inputs, overwrite=overwrite, option="--table")
    sim = simulate(cfg, table=read_localizations(sites) if sites is not None else None)
    size = cfg.pixel_size / 1000
    movie = np.clip(np.round(sim.movie), 0, 65535).astype(np.uint16)
    written = write_image(out, movie, "TYX", {"Y": size, "X": size})
    return written, write_localizations(table, sim.truth, format=table_format)
