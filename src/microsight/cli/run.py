"""Commands that work on images: demo, train, predict, evaluate, tune."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from microsight.cli._app import Axes, Overwrite, _api, _sizes, _width, app, console
from microsight.errors import MicrosightError


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for data, model, result and report.")] =
    Path("microsight-demo"),
    epochs: Annotated[int | None, typer.Option(help="Override the number of epochs.")] = None,
) -> None:
    """Train CARE on bundled nuclei data, restore a held-out image, write the report."""
    from microsight.demo import run_demo

    run_demo(out, epochs=epochs, console=console)


@app.command()
def train(
    method: Annotated[str, typer.Argument(help="Method to train (see `microsight methods`).")],
    input: Annotated[Path, typer.Option("--input", "-i", help=(
        "Input image or folder; for SMLM methods (localize, deepstorm) a movie with its "
        "--target table, or 'simulate': train on movies simulated from the config's "
        "simulation settings (microsight config localize)."))],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    target: Annotated[Path | None, typer.Option("--target", "-t",
                                                help="Target image or folder.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML configuration file.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Number of epochs.")] = None,
    steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    init_from: Annotated[Path | None, typer.Option(
        help="Fine-tune: start from this model's weights (a model folder, .zip or shipped "
             "model name, see `microsight models`); its configuration is the default.")] =
    None,
    axes: Axes = None,
    patch_size: Annotated[str | None, typer.Option(help="Patch size, e.g. 64 or 64,64.")] =
    None,
    batch_size: Annotated[int | None, typer.Option(help="Patches per step.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    devices: Annotated[int | None, typer.Option(
        help="Train on N devices at once (distributed data parallel: GPUs, or CPU "
             "processes).")] = None,
    num_nodes: Annotated[int | None, typer.Option(
        help="Machines of a multi-node run (e.g. a SLURM job).")] = None,
    val_input: Annotated[Path | None, typer.Option(
        help="Validation images (file or folder), e.g. other fields of view: no automatic "
             "split, training uses all of --input/--target.")] = None,
    val_target: Annotated[Path | None, typer.Option(
        help="Targets of the --val-input images (paired by file name).")] = None,
    group_pattern: Annotated[str | None, typer.Option(
        help="Regular expression naming the field of view in the file names (its first "
             "group, or the match); the automatic split keeps each on one side. Default: "
             "names differing only by a trailing frame number (_12, -12, _t12) are one.",
        metavar="REGEX")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a model; the model folder is updated after every epoch."""
    cfg: Any = config
    sizes = _sizes(patch_size)
    if sizes is not None and len(sizes) == 1:
        sizes = sizes * 2
    for name, value in (("epochs", epochs), ("steps", steps), ("batch-size", batch_size)):
        if value is not None and value < 1:
            raise MicrosightError(f"--{name} must be >= 1, got {value}")
    if sizes is not None and (not sizes or min(sizes) < 1):
        raise MicrosightError(f"--patch-size must be positive integers, got {patch_size!r}")
    if sizes or batch_size is not None or seed is not None:
        base: Any = config
        if config is None and init_from is not None and not resume:
            base = _api().fine_tune_base(init_from)
        cfg = _api().build_config(method, base, data={"patch_size": sizes,
                                                     "batch_size": batch_size},
                               training={"seed": seed})
    from microsight.engine.progress import stop_on_signals

    with stop_on_signals() as stop:
        try:
            model = _api().train(method, input, target, out=out, config=cfg, epochs=epochs,
                                 steps=steps, axes=axes, resume=resume, init_from=init_from,
                                 progress=progress, cancel=stop,
                                 devices=devices, num_nodes=num_nodes,
                                 val_input=val_input, val_target=val_target,
                                 group_pattern=group_pattern)
        except MicrosightError as exc:
            if stop.signal is None:
                raise
            print(f"microsight: error: interrupted by {stop.signal.name}: {exc} "
                  f"(microsight train {method} ... -o {out} --resume)", file=sys.stderr)
            raise typer.Exit(128 + int(stop.signal)) from None
    from microsight.qc.epochs import shown_epoch

    best, loss = shown_epoch(model.qc.get("best_epoch")), model.qc.get("best_val_loss")
    run = len(model.history)
    if loss is None or best is None:
        text = "no validation yet"
    else:
        text = f"best epoch {best} of {run}, validation loss {loss:.4g}"
    # Plain print: one line, the path unbroken.
    print(f"model written to {out} ({text})")


@app.command()
def predict(
    paths: Annotated[list[Path], typer.Argument(
        help="Model folder(s), .zip or shipped model name such as nuclei-fluo (several: an "
             "ensemble), then the image or folder to process (.tif, .ome.zarr, .png...).",
        metavar="MODEL... IMAGE")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (.tif, .ome.zarr).")],
    axes: Axes = None,
    tile: Annotated[int | None, typer.Option(help="Tile edge in pixels.")] = None,
    overlap: Annotated[int | None, typer.Option(help="Tile overlap in pixels.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Tiles per forward pass.")] = None,
    uncertainty: Annotated[str | None, typer.Option(
        help="Also write a per-pixel uncertainty map: 'model' (probabilistic models), "
             "'tta' (8 flips/rotations), 'ensemble' (several models), written next to "
             "--out as NAME.uncertainty.EXT; or a file path for the model's own map.")] = None,
    tta: Annotated[bool, typer.Option(
        "--tta", help="Average the prediction over the 8 flips/rotations of the image "
                      "(8x slower, usually a little better; segmentation too).")] = False,
    check: Annotated[bool, typer.Option(
        help="Check the image against the model's training data (warning line and "
             "OUT.qc.json).")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    scene: Annotated[int | None, typer.Option(
        help="Scene of a multi-scene ND2/LIF/CZI file (0-based; default the first).")] = None,
    rois: Annotated[Path | None, typer.Option(
        help="Segmentation: also write the outlines as an ImageJ/Fiji ROI set (.zip).")] =
    None,
    overwrite: Overwrite = False,
    workers: Annotated[int | None, typer.Option(
        help="Predict over a local Dask cluster of N worker processes (a folder: images "
             "spread over workers; one .ome.zarr: blocks of rows). Needs the dask "
             "extra.")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Predict over an existing Dask cluster, e.g. tcp://10.0.0.5:8786.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Folder: skip images whose output exists (else refused).")] = False,
) -> None:
    """Apply a model to an image of any size, or to every image of a folder.

    Large images are tiled (OME-Zarr streamed); with IMAGE a folder, --out is a folder."""
    if len(paths) < 2:
        raise MicrosightError("give a model and an image: microsight predict MODEL IMAGE --out "
                              "OUT (several models before the image make an ensemble)")
    *models, image = paths
    if (image.is_dir() and not image.name.lower().endswith(".zarr")) or (
            workers is not None or scheduler is not None):
        _predict_scaled(models, image, out, workers=workers, scheduler=scheduler,
                        resume=resume, axes=axes, tile=tile, overlap=overlap,
                        batch_size=batch_size, check=check, progress=progress,
                        extra=uncertainty is not None or tta)
        return
    files: list[tuple[str, str]] = []

    def note_file(event: Any) -> None:
        if event.kind == "written":
            files.append((event.metrics["path"], event.metrics["what"]))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", _api().OutOfDistributionWarning)
        warnings.simplefilter("always", _api().SceneWarning)
        warnings.simplefilter("always", _api().ColourWarning)
        written = _api().predict(models if len(models) > 1 else models[0], image, out=out,
                              axes=axes, tile=tile, overlap=overlap, batch_size=batch_size,
                              progress=progress, uncertainty=uncertainty, tta=tta,
                              check=check, scene=scene, rois=rois, overwrite=overwrite,
                              callback=note_file)
    for w in caught:
        if issubclass(w.category, (_api().OutOfDistributionWarning, _api().SceneWarning,
                                   _api().ColourWarning)):
            # Plain print: one unwrapped line, whatever the terminal width.
            print(f"microsight: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not files:  # a package from elsewhere: only its main output is known
        files = [(str(p), "prediction") for p in
                 (written if isinstance(written, tuple) else (written,))]
    _print_files(files)


def _print_files(files: list[tuple[str, str]]) -> None:
    """``wrote:`` and one line per file: its name, then what it holds."""
    from microsight.qc.text import file_lines

    print("\n".join(file_lines(files, _width())))


def _predict_scaled(models: list[Path], image: Path, out: Path, *, workers: int | None,
                    scheduler: str | None, resume: bool, extra: bool, **options: Any) -> None:
    """A folder of images, or one large image over Dask workers; prints what was written."""
    if len(models) > 1 or extra:
        raise MicrosightError("folders and --workers/--scheduler take one model, without "
                              "--uncertainty or --tta")
    if not (image.is_dir() and not image.name.lower().endswith(".zarr")):
        lines = (_api().OutOfDistributionWarning, _api().ColourWarning)
        with warnings.catch_warnings(record=True) as caught:
            for kind in lines:
                warnings.simplefilter("always", kind)
            written = _api().predict_large(models[0], image, out, workers=workers,
                                           scheduler=scheduler, **options)
        for w in caught:
            if issubclass(w.category, lines):
                print(f"microsight: warning: {w.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        console.print(f"wrote {written}")
        return
    result = _api().predict_folder(models[0], image, out, workers=workers,
                                   scheduler=scheduler, resume=resume, **options)
    from rich.markup import escape

    table = Table("input", "status", "outputs", "s", "note", title=f"written to {out}")
    for row in result.rows:
        outputs = ", ".join(p.name for p in row.outputs)
        table.add_row(escape(row.input.name), row.status, escape(outputs),
                      f"{row.seconds:.1f}" if row.seconds else "", escape(row.note))
    console.print(table)
    counts = ", ".join(f"{result.count(s)} {s}" for s in
                       ("written", "skipped", "failed", "not an image") if result.count(s))
    console.print(counts)
    if result.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    models: Annotated[list[Path], typer.Argument(
        help="Model folder(s), .zip or shipped model name (several: scored as an ensemble, "
             "the mean of their predictions).", metavar="MODEL...")],
    input: Annotated[Path, typer.Option("--input", "-i", help="Held-out inputs.")],
    target: Annotated[Path, typer.Option("--target", "-t", help="Ground truth.")],
    report: Annotated[Path | None, typer.Option(help="Report: HTML, or PDF (.pdf path).")] = None,
    axes: Axes = None,
    tta: Annotated[bool, typer.Option(
        "--tta", help="Score the mean prediction over the 8 flips/rotations.")] = False,
    overwrite: Overwrite = False,
    table: Annotated[Path | None, typer.Option(
        help="Write every metric to this CSV file (means per source) and a .json file of "
             "the same name (per image too); default beside --report.",
        metavar="FILE.csv")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    tolerance: Annotated[float | None, typer.Option(
        help="Localization models: largest distance (nm) at which a localization matches "
             "a true emitter (default: the model's, 250 nm).", metavar="NM")] = None,
) -> None:
    """Score a model against ground truth and classical baselines."""
    result = _api().evaluate(models if len(models) > 1 else models[0], input, target,
                          report=report, axes=axes, tta=tta, overwrite=overwrite, table=table,
                          progress=progress, tolerance=tolerance)
    _print_evaluation(result)


def _print_evaluation(result: Any) -> None:
    """The key metrics per source, the verdict and where everything else is."""
    from microsight.qc.text import evaluation_lines

    # Plain print: the lines fit the terminal already; rich would re-wrap them.
    print("\n".join(evaluation_lines(result, _width())))


@app.command()
def tune(
    model: Annotated[Path, typer.Argument(help="Segmentation or localization model folder "
                                               "(updated).")],
    input: Annotated[Path, typer.Option("--input", "-i", help=(
        "Annotated images; for a localization model a movie, or 'simulate' (a movie "
        "simulated from the model's settings)."))],
    target: Annotated[Path | None, typer.Option("--target", "-t", help=(
        "Their label images, or the movie's ground-truth localization table."))] = None,
    axes: Axes = None,
    objective: Annotated[str | None, typer.Option(help=(
        "Localization models: 'jaccard' (highest Jaccard index within --max-rmse; the "
        "default) or 'efficiency' (Sage et al. 2019, combining Jaccard and RMSE)."))] = None,
    max_rmse: Annotated[float | None, typer.Option(help=(
        "Localization models, objective jaccard: largest lateral RMSE (nm) allowed "
        "(default: half the model's pixel size)."), metavar="NM")] = None,
) -> None:
    """Choose a model's thresholds on annotated images (segmentation) or a movie.

    Segmentation: the post-processing thresholds that turn the network's maps into
    objects. Localization: the detection threshold."""
    result = _api().tune(model, input, target, axes=axes, objective=objective,
                         max_rmse=max_rmse)
    if "n_frames" in result:
        # Plain print: sentences the terminal wraps, as the verdict.
        print(f"{result['movie']}: {result['n_frames']} frame(s), {result['n_emitters']} "
              f"emitters; objective: {result['objective']}")
        print(f"before: {_detection(result['params_before'], result['metrics_before'])}")
        print(f"chosen: {_detection(result['params'], result['metrics'])} (saved in {model})")
        return
    console.print(f"{result['n_images']} image(s), {result['n_objects']} objects, "
                  f"score = {result['objective']}")
    console.print(f"before: {result['params_before']} -> {result['score_before']:.4f}")
    console.print(f"chosen: {result['params']} -> {result['score']:.4f} (saved in {model})")


def _detection(params: dict[str, float], metrics: dict[str, float | None]) -> str:
    """Detection thresholds and their scores, in words (no match: no RMSE)."""
    rmse, eff = metrics["rmse_lateral"], metrics["efficiency_lateral"]
    scores = "no match" if rmse is None else f"RMSE {rmse:.1f} nm, efficiency {eff:.1f}"
    return (f"threshold {params['threshold']:g}, single_threshold {params['single_threshold']:g}"
            f" -> Jaccard {metrics['jaccard']:.3f}, {scores}")


