"""Models and their configurations: load, describe, export; method configs for forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microsight.config import (
    Configuration,
    available_methods,
    get_method,
    load_config,
    merge_overrides,
    validate_config,
)
from microsight.engine.bundle import Model, zip_bundle
from microsight.engine.bundle import load_model as _load_bundle
from microsight.engine.checks import (
    IncompleteModelWarning as IncompleteModelWarning,
)
from microsight.errors import MicrosightError
from microsight.io.outputs import check_output

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


def info(model: ModelLike) -> dict[str, Any]:
    """Describe a model: config, training data, history and QC summary.

    Returns
    -------
    dict
        ``{"model": ..., "config": ..., "data": ..., "qc": ..., "history": [...]}``.
    """
    model = _as_model(model)
    qc = dict(model.qc)
    if "val_psnr" not in getattr(model.module, "val_metrics", ("val_psnr",)):
        # Older bundles of other tasks stored a PSNR that says nothing about them.
        qc.pop("best_val_psnr", None)
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


def pretrained() -> list[dict[str, Any]]:
    """The models shipped with microsight (and with installed model distributions).

    Each is found by name, offline: ``predict("nuclei-fluo", image)``,
    ``load_model("nuclei-fluo")``, ``train(..., init_from="nuclei-fluo")``.

    Returns
    -------
    list of dict
        One summary per model: name, aliases, task, method, data, size_mb and the
        validation and test metrics of its card.
    """
    from microsight.pretrained import pretrained_models

    return [model.summary() for model in pretrained_models().values()]


def pretrained_card(name: str) -> dict[str, Any]:
    """The full card of a shipped model (training data, recipe, metrics, limits).

    Parameters
    ----------
    name : str
        Name or alias, e.g. ``"nuclei-fluo"``.

    Returns
    -------
    dict
        The card, plus ``path`` (its folder) and ``size_mb``.
    """
    from microsight.pretrained import require_pretrained

    model = require_pretrained(name)
    return {**model.card, "path": str(model.path), "size_mb": model.summary()["size_mb"]}


def copy_pretrained(name: str, folder: str | Path) -> Path:
    """Copy a shipped model into a model folder of yours (to tune, fine-tune, share).

    Parameters
    ----------
    name : str
        Name or alias of the shipped model.
    folder : str or Path
        A new folder; an existing path is never replaced.

    Returns
    -------
    Path
        The folder written.
    """
    import shutil
    import tempfile

    from microsight.pretrained import require_pretrained

    model = require_pretrained(name)
    folder = Path(folder)
    if folder.exists():
        raise MicrosightError(f"{folder} exists; nothing was copied: choose a new folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        shutil.copytree(model.path, tmp, dirs_exist_ok=True)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


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
