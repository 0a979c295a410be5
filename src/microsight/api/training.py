"""Train a model, and choose a model's thresholds on annotated images or movies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microsight.api.models import build_config, load_model
from microsight.config import (
    Configuration,
    MethodSpec,
    available_methods,
    get_method,
)
from microsight.data.groups import check_pattern
from microsight.engine.bundle import Model
from microsight.engine.checks import (
    IncompleteModelWarning as IncompleteModelWarning,
)
from microsight.engine.checks import (
    check_counts,
)
from microsight.engine.progress import Callback, CancelSignal, Monitor
from microsight.engine.training import train_model
from microsight.errors import MicrosightError
from microsight.io.outputs import check_output


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
    val_input: str | Path | None = None,
    val_target: str | Path | None = None,
    group_pattern: str | None = None,
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
        Start from this model's weights (fine-tuning on new data): a model folder,
        .zip or shipped model name (``"nuclei-fluo"``). It must be the same method
        with the same network fields; without ``config``, its own configuration
        (network, patches, normalization) is the starting point. Lower the learning
        rate with it.
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
    val_input, val_target : str or Path, optional
        Validation images (and their targets; none for methods without targets),
        e.g. other fields of view: training then uses all of ``input``/``target``
        and no automatic split is made (``data.val_input``, ``data.val_target``).
    group_pattern : str, optional
        Regular expression naming the field of view in each file name (its first
        group, or the whole match); the automatic split keeps each field of view on
        one side (``data.group_pattern``). By default file names that differ only
        by a trailing frame/tile number (``_12``, ``-12``, ``_t12``...) are one.

    Returns
    -------
    Model
    """
    check_counts(epochs=epochs, steps=steps)
    if val_target is not None and val_input is None:
        raise MicrosightError("--val-target needs --val-input (the validation images it "
                              "belongs to)")
    training = {"epochs": epochs, "max_steps": steps, "devices": devices,
                "num_nodes": num_nodes,
                "init_from": None if init_from is None else str(init_from)}
    data = {"val_input": _text(val_input), "val_target": _text(val_target),
            "group_pattern": group_pattern}
    if group_pattern is not None:
        check_pattern(group_pattern)
    if resume:
        saved = Path(out) / "config.yaml"
        if not saved.is_file():
            raise MicrosightError(f"nothing to resume: {saved} does not exist")
        cfg = build_config(method, saved, training=training, data=data)
    else:
        if config is None and init_from is not None:
            config = fine_tune_base(init_from)
        cfg = build_config(method, config, training=training, data=data)
    check_output(out, inputs=[input, target, config if isinstance(config, (str, Path)) else None,
                              init_from, cfg.data.val_input, cfg.data.val_target],
                 kind="bundle")
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
    _check_validation(spec, cfg.data.val_input, cfg.data.val_target, input, target)
    data, normalization = spec.part("training_data")(cfg, input, target, axes)
    if cfg.data.val_input and getattr(data, "summary", {}).get("split_rule") != "given":
        raise MicrosightError(f"method {method} makes its own validation data and takes no "
                              "--val-input; drop it")
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


def _text(path: str | Path | None) -> str | None:
    return None if path is None else str(path)


def _check_validation(spec: MethodSpec, val_input: str | None, val_target: str | None,
                      input: str | Path, target: str | Path | None) -> None:
    """Refuse validation data that cannot work, one line each, before any data is read."""
    if val_input is None:
        return
    for option, path in (("--val-input", val_input), ("--val-target", val_target)):
        if path is not None and not Path(path).exists():
            raise MicrosightError(f"{option} {path}: no such file or folder; check the path")
    if Path(val_input).resolve() == Path(input).resolve():
        raise MicrosightError(f"--val-input {val_input} is the same as --input: validation "
                              "would repeat the training data; give images of other fields "
                              "of view (or drop --val-input for an automatic split)")
    if val_target is not None and target is None:
        drop = ("it learns from images alone" if spec.needs_target is False
                else "training has no --target")
        raise MicrosightError(f"method {spec.name} takes no --val-target ({drop}); drop "
                              "--val-target")
    if val_target is None and target is not None:
        raise MicrosightError(f"method {spec.name} validates on pairs like it trains: give "
                              "--val-target with the targets of the --val-input images "
                              "(paired by file name)")


def tune(model: str | Path, input: str | Path, target: str | Path | None = None, *,
         axes: str | None = None, progress: bool = True, objective: str | None = None,
         max_rmse: float | None = None) -> dict[str, Any]:
    """Choose a model's detection or post-processing thresholds on annotated data.

    Segmentation models: the thresholds that turn the network's maps into
    objects, on annotated images (best mean of AP@0.5 and AP@0.75); training
    already chooses them on its validation images. Localization models
    (``localize``): the detection threshold, on a movie with its ground-truth
    table or on a movie simulated from the model's settings (``input="simulate"``).
    Tune again when your data differ from the training data (another microscope,
    stain, density or magnification), on data apart from those you will report
    test scores on.

    Parameters
    ----------
    model : str or Path
        Bundle folder (its ``config.yaml`` and ``qc.json`` are updated).
    input, target : str or Path
        Images and their instance label images (files or folders paired by name),
        or a movie and its localization table; ``input="simulate"`` (no target)
        for a localization model.
    axes : str, optional
        Axes override.
    progress : bool
        Show a progress bar.
    objective : {"jaccard", "efficiency"}, optional
        Localization models: maximize the Jaccard index within an RMSE limit
        (default), or the 2019 SMLM challenge's efficiency.
    max_rmse : float, optional
        Localization models, objective ``jaccard``: largest lateral RMSE (nm) a
        threshold may give; default half the model's pixel size.

    Returns
    -------
    dict
        The chosen ``params`` and their ``score``, the previous values and theirs,
        the ``objective`` in words and the amount of data (``n_images`` and
        ``n_objects``; ``n_frames``, ``n_emitters`` and the ``metrics`` of both
        settings for localization models).
    """
    folder = Path(model)
    if not folder.is_dir():
        raise MicrosightError(f"{folder} is not a model folder; tuning rewrites the bundle, "
                              "so give the folder (unpack a .zip first)")
    loaded = load_model(folder)
    spec = get_method(loaded.config.method.method)
    if spec.outputs[0] == "localizations":
        from microsight.families.smlm.tuning import tune_localizer

        return tune_localizer(loaded, folder, input, target, axes=axes, objective=objective,
                              max_rmse=max_rmse, progress=progress).to_dict()
    if spec.name not in tunable_methods():
        raise MicrosightError(
            f"nothing to tune: method {spec.name} has no detection or post-processing "
            f"thresholds; methods that can be tuned: {', '.join(tunable_methods())}")
    if objective is not None or max_rmse is not None:
        raise MicrosightError("--objective and --max-rmse apply to localization models; "
                              f"method {spec.name} is tuned on the mean of AP@0.5 and AP@0.75")
    return _tune_segmentation(loaded, folder, input, target, axes=axes, progress=progress)


def tunable_methods() -> list[str]:
    """Methods with thresholds :func:`tune` can choose (it imports their modules)."""
    names = []
    for name, spec in available_methods().items():
        if spec.outputs[0] == "localizations":
            names.append(name)
        elif spec.family == "segmentation":
            try:
                grid = getattr(spec.module_class, "threshold_grid", None)
            except MicrosightError:  # a broken plugin must not hide the others
                continue
            if grid is not None and grid(build_config(name)):
                names.append(name)
    return sorted(names)


def _tune_segmentation(loaded: Model, folder: Path, input: str | Path,
                       target: str | Path | None, *, axes: str | None, progress: bool
                       ) -> dict[str, Any]:
    """Segmentation thresholds on annotated images (see :func:`tune`)."""
    from microsight.data.pairs import load_items
    from microsight.families.segmentation.tuning import (
        apply_tuning,
        label_images,
        tune_postprocessing,
    )

    name = loaded.config.method.method
    if target is None:
        raise MicrosightError(f"method {name} is tuned on annotated images: pass --target "
                              "with their label images")
    items, targets, _ = load_items(input, target, ndim=len(loaded.config.data.patch_size),
                                   axes=axes or loaded.config.data.axes)
    result = tune_postprocessing(loaded, items, label_images(targets), progress=progress)
    if result is None:
        raise MicrosightError("nothing to tune: the label images hold no objects")
    apply_tuning(folder, loaded, result)
    return result.to_dict()


def fine_tune_base(init_from: str | Path) -> dict[str, Any]:
    """The configuration a fine-tuning run starts from: that of the model it starts from.

    Its network, patches and normalization are kept (the weights need them); its
    training section is left to the defaults and the overrides of the new run.

    Parameters
    ----------
    init_from : str or Path
        Model folder, .zip or shipped model name.

    Returns
    -------
    dict
        A configuration mapping for :func:`build_config`.
    """
    raw = load_model(init_from).config.model_dump(mode="json")
    raw.pop("training", None)
    for key in ("val_input", "val_target", "group_pattern"):  # that model's data, not these
        raw.get("data", {}).pop(key, None)
    return raw
