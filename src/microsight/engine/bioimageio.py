"""BioImage Model Zoo packages (format 0.5): export microsight models.

An exported package holds the network three ways (``pytorch_state_dict`` whose
architecture is :class:`BioimageioNetwork` in microsight, TorchScript and
ONNX), the normalization as the zoo's pre/post-processing where it maps exactly,
a test input and output made with that processing, a cover, the model card,
citations, and the microsight bundle files themselves as attachments, so that
``microsight predict PACKAGE.zip`` re-imports the model without loss. The
package is validated and test-run by ``bioimageio.core`` before it is written.

How microsight's normalization maps:

- ``dataset`` mode, input: ``(x - low) / (high - low)`` per channel is exactly
  ``scale_linear`` (gain ``1/(high-low)``, offset ``-low/(high-low)``);
- ``dataset`` mode, restoration output: back to the target's scale, exactly
  ``scale_linear`` (gain ``high-low``, offset ``low``);
- ``per_image`` mode, input: ``scale_range`` with the same percentiles, computed
  by the zoo on the whole image rather than on microsight's subsample (nearly
  equal, not bit-exact); the output is left in normalized units, since mapping
  it back to each image's own percentiles has no zoo equivalent;
- segmentation, detection and SMLM maps are returned as probabilities/maps;
  turning them into objects is microsight's post-processing, stated in the card.

Packages made elsewhere run through :mod:`microsight.engine.bioimageio_run`.

``bioimageio.core`` and ``bioimageio.spec`` come with the optional extra
``microsight[bioimageio]``.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microsight.config import get_method, validate_config
from microsight.engine.bundle import Model, _version
from microsight.engine.export import (
    ExportedNetwork,
    export_problem,
    onnx_bytes,
    torchscript_bytes,
)
from microsight.errors import MicrosightError

#: Methods packaged for the zoo (the others are exportable as TorchScript/ONNX).
BIOIMAGEIO_METHODS = ("care", "n2n", "n2v", "sr", "care-iso", "labelfree", "unet-seg",
                      "distmap", "starconvex", "detect", "deepstorm", "localize")

#: Bundle files attached to a package so that microsight re-imports it without loss.
BUNDLE_FILES = ("model.json", "config.yaml", "weights.safetensors", "normalization.json",
                "qc.json", "history.csv", "ood.json")

_CITES = {
    "care": ("Weigert et al. 2018, Content-aware image restoration, Nature Methods",
             "10.1038/s41592-018-0216-7"),
    "n2v": ("Krull et al. 2019, Noise2Void - learning denoising from single noisy images, "
            "CVPR", "10.1109/CVPR.2019.00223"),
    "labelfree": ("Ounkomol et al. 2018, Label-free prediction of three-dimensional "
                  "fluorescence images from transmitted-light microscopy, Nature Methods",
                  "10.1038/s41592-018-0111-2"),
    "starconvex": ("Schmidt et al. 2018, Cell detection with star-convex polygons, MICCAI",
                   "10.1007/978-3-030-00934-2_30"),
    "distmap": ("Naylor et al. 2019, Segmentation of nuclei in histopathology images by "
                "deep regression of the distance map, IEEE TMI", "10.1109/TMI.2018.2865709"),
}
_UNET = ("Ronneberger et al. 2015, U-Net: convolutional networks for biomedical image "
         "segmentation, MICCAI", "10.1007/978-3-319-24574-4_28")
_N2N_URL = "https://arxiv.org/abs/1803.04189"


def _spec() -> Any:
    try:
        import bioimageio.core  # noqa: F401
        import bioimageio.spec.model.v0_5 as v05
    except ImportError:
        raise MicrosightError('BioImage Model Zoo packages need bioimageio.core; install it '
                              'with pip install "microsight[bioimageio]"') from None
    return v05


class BioimageioNetwork(ExportedNetwork):
    """The architecture a package's ``pytorch_state_dict`` weights refer to.

    Parameters
    ----------
    config : dict
        The model's full microsight configuration.
    in_channels, out_channels : int
        The network's channels.
    """

    def __init__(self, config: dict, in_channels: int, out_channels: int):
        cfg = validate_config(config)
        module = get_method(cfg.method.method).module_class(cfg, in_channels, out_channels)
        super().__init__(module.eval())


def is_package(path: str | Path) -> bool:
    """True for a zip that describes a zoo resource (``rdf.yaml`` or ``bioimageio.yaml``)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.split("/")[-1] in ("rdf.yaml", "bioimageio.yaml") for n in zf.namelist())


def is_microsight_package(path: str | Path) -> bool:
    """True for a zoo package that carries a microsight bundle (loads with ``load_model``)."""
    if not is_package(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    return {"model.json", "weights.safetensors"} <= names


# --- export -------------------------------------------------------------------------------

def _maps_output(model: Model) -> bool:
    """True when microsight maps the network output back to intensities (restoration)."""
    return get_method(model.method).tiled


def _channel_kwargs(v05: Any, gain: list[float], offset: list[float]) -> Any:
    if len(gain) == 1:
        return v05.ScaleLinearKwargs(gain=gain[0], offset=offset[0])
    return v05.ScaleLinearAlongAxisKwargs(axis=v05.AxisId("channel"), gain=gain, offset=offset)


def _processing(model: Model, v05: Any, spatial: list[str]) -> tuple[list, list, str]:
    """Zoo pre- and post-processing of a model, and a sentence on how exact they are."""
    norm = model.normalization
    if norm["mode"] == "dataset":
        low, high = np.asarray(norm["input"]["low"]), np.asarray(norm["input"]["high"])
        scale = np.where(high - low == 0, 1.0, high - low)
        pre = [v05.ScaleLinearDescr(kwargs=_channel_kwargs(
            v05, [float(v) for v in 1 / scale], [float(v) for v in -low / scale]))]
        note = "Input normalization: exactly microsight's (stored dataset percentiles)."
    else:
        low, high = sorted((norm["p_low"], norm["p_high"]))
        pre = [v05.ScaleRangeDescr(kwargs=v05.ScaleRangeKwargs(
            axes=[v05.AxisId(a) for a in spatial], min_percentile=low,
            max_percentile=high))]
        note = ("Input normalization: per-image percentiles; the zoo computes them on the "
                "whole image, microsight on a subsample (nearly equal).")
        if norm["p_low"] > norm["p_high"]:
            # An inverted model (dark objects on a bright background): 1 - x after the
            # range is the same map as microsight's swapped percentiles.
            pre.append(v05.ScaleLinearDescr(kwargs=_channel_kwargs(
                v05, [-1.0] * model.module.in_channels, [1.0] * model.module.in_channels)))
            note += " The normalized input is inverted (1 - x)."
    post = []
    if _maps_output(model):
        if norm["mode"] == "dataset":
            target = norm.get("target", norm["input"])
            low, high = np.asarray(target["low"]), np.asarray(target["high"])
            scale = np.where(high - low == 0, 1.0, high - low)
            post = [v05.ScaleLinearDescr(kwargs=_channel_kwargs(
                v05, [float(v) for v in scale], [float(v) for v in low]))]
            note += " Output: exactly microsight's, in the training target's intensities."
        else:
            note += (" Output: left in normalized units (microsight maps it back with each "
                     "image's own percentiles, which the zoo cannot express).")
    return pre, post, note


def _apply(steps: list, x: np.ndarray, spatial_axes: tuple[int, ...]) -> np.ndarray:
    """Apply scale_linear / scale_range steps as the zoo does (for the test output)."""
    for step in steps:
        k = step.kwargs
        if step.id == "scale_linear":
            shape = (1, -1) + (1,) * (x.ndim - 2)
            gain = np.reshape(np.asarray(k.gain, np.float64), shape if np.ndim(k.gain) else ())
            offset = np.reshape(np.asarray(k.offset, np.float64),
                                shape if np.ndim(k.offset) else ())
            x = x * gain + offset
        else:  # scale_range over the spatial axes, per channel
            lo = np.percentile(x, k.min_percentile, axis=spatial_axes, keepdims=True)
            hi = np.percentile(x, k.max_percentile, axis=spatial_axes, keepdims=True)
            x = (x - lo) / (hi - lo + k.eps)
    return x.astype(np.float32)


def _test_input(model: Model, pre: list) -> np.ndarray:
    """A smooth random test image in the model's input intensities, ``(1, C, *S)``."""
    from scipy import ndimage

    module = model.module
    ndim, div = module.network_ndim, max(1, module.divisor)
    side = -(-(64 if ndim == 2 else 32) // div) * div
    rng = np.random.default_rng(0)
    norm = ndimage.gaussian_filter(rng.normal(0, 1, (module.in_channels, *[side] * ndim)),
                                   (0,) + (2,) * ndim)
    norm = (norm - norm.min()) / (np.ptp(norm) + 1e-9) + rng.normal(0, 0.05, norm.shape)
    if pre and pre[0].id == "scale_linear":
        k = pre[0].kwargs
        shape = (-1,) + (1,) * ndim
        gain = np.reshape(np.asarray(k.gain, np.float64), shape if np.ndim(k.gain) else ())
        offset = np.reshape(np.asarray(k.offset, np.float64), shape if np.ndim(k.offset) else ())
        raw = (norm - offset) / gain
    else:
        raw = norm * 1000 + 100
    return raw[None].astype(np.float32)


def _cover(folder: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Input (left) and first output channel (right), middle plane, as one PNG."""
    import imageio.v3 as iio

    def plane(a: np.ndarray) -> np.ndarray:
        a = a[0, 0]
        a = a[a.shape[0] // 2] if a.ndim == 3 else a
        lo, hi = np.percentile(a, (1, 99.8))
        return np.clip((a - lo) / (hi - lo + 1e-9), 0, 1)

    left, right = plane(x), plane(y)
    # A finer output (super-resolution) is shown next to its input at the same size.
    left = np.kron(left, np.ones((right.shape[0] // left.shape[0],
                                  right.shape[1] // left.shape[1])))
    both = np.concatenate([left, np.ones((right.shape[0], 4)), right], axis=1)
    big = np.kron(both, np.ones((4, 4)))  # the zoo shows covers of at least 256 pixels
    path = folder / "cover.png"
    iio.imwrite(path, (big * 255).astype(np.uint8))
    return path


def _card(model: Model, note: str, output: str) -> str:
    lines = [(model.path / "README.md").read_text() if model.path and (
        model.path / "README.md").is_file() else f"# {model.config.name}\n",
        "", "## BioImage Model Zoo package", "",
        f"Made by microsight {_version()} from the microsight model above (method "
        f"`{model.method}`). {note}", "", f"Network output: {output}.", "",
        *_steps(model),
        "Run it with `microsight predict PACKAGE.zip image.tif --out result.tif` for "
        "microsight's full behaviour (tiling, out-of-distribution check, "
        "post-processing), or in any zoo consumer (deepImageJ, ilastik, QuPath, napari).",
        "", "## Training data", "", "```json", json.dumps(model.qc.get("data", {}), indent=2,
                                                       default=str)[:4000], "```", ""]
    return "\n".join(lines)


def _notes(model: Model) -> dict[str, Any]:
    return type(model.module).export_notes(model)


def _steps(model: Model) -> list[str]:
    """The card's section on microsight's processing around the network (if any)."""
    steps = _notes(model).get("steps") or []
    if not steps:
        return []
    return ["## Processing around the network", "", *[f"- {s}" for s in steps], ""]


def _cites(v05: Any, method: str) -> list:
    cites = [v05.CiteEntry(text=_UNET[0], doi=v05.Doi(_UNET[1]))]
    if method in _CITES:
        text, doi = _CITES[method]
        cites.insert(0, v05.CiteEntry(text=text, doi=v05.Doi(doi)))
    if method == "n2n":
        cites.insert(0, v05.CiteEntry(text="Lehtinen et al. 2018, Noise2Noise: learning image "
                                           "restoration without clean data, ICML",
                                      url=_N2N_URL))
    return cites


def _name(model: Model) -> str:
    """A package name: the model's own when long enough (the zoo wants 5 to 128 characters)."""
    name = model.config.name.strip()
    return (name if len(name) >= 5 else f"microsight {model.method} {name}".strip())[:128]


def bioimageio_problem(method: str) -> str | None:
    """Why a method cannot be packaged for the zoo yet, or None when it can."""
    problem = export_problem(method)
    if problem or method in BIOIMAGEIO_METHODS:
        return problem
    return (f"method {method} is not packaged for the BioImage Model Zoo yet (its output "
            "grid or slicing differs from its input's); export it with --format "
            "torchscript or onnx")


def _tensors(model: Model, v05: Any, folder: Path, pre: list, post: list
             ) -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray]:
    """Input and output tensor descriptions with test tensors made with the processing."""
    module = model.module
    ndim, div = module.network_ndim, max(1, module.divisor)
    spatial = ["z", "y", "x"][-ndim:]
    x = _test_input(model, pre)
    xn = _apply(pre, x.astype(np.float64), tuple(range(2, 2 + ndim)))
    with torch.no_grad():
        yn = ExportedNetwork(module)(torch.from_numpy(xn)).numpy()
    y = _apply(post, yn.astype(np.float64), tuple(range(2, 2 + ndim)))
    scale = int(module.output_scale)
    np.save(folder / "test_input.npy", x)
    np.save(folder / "test_output.npy", y)
    notes = _notes(model)

    def names(n: int, stem: str) -> list:
        given = notes.get("inputs" if stem == "channel" else "outputs") or []
        chosen = given if len(given) == n else [f"{stem}{i}" for i in range(n)]
        return [v05.Identifier(name) for name in chosen]

    inp = v05.InputTensorDescr(
        id=v05.TensorId("input"),
        axes=[v05.BatchAxis(), v05.ChannelAxis(channel_names=names(x.shape[1], "channel")),
              *[v05.SpaceInputAxis(id=v05.AxisId(a), size=v05.ParameterizedSize(
                  min=div, step=div)) for a in spatial]],
        test_tensor=v05.FileDescr(source=folder / "test_input.npy"), preprocessing=pre)
    out = v05.OutputTensorDescr(
        id=v05.TensorId("output"),
        axes=[v05.BatchAxis(), v05.ChannelAxis(channel_names=names(y.shape[1], "output")),
              # A finer output grid (super-resolution) is a smaller pixel: the zoo sizes
              # it as input size * input scale / output scale.
              *[v05.SpaceOutputAxis(id=v05.AxisId(a), scale=1 / scale, size=v05.SizeReference(
                  tensor_id=v05.TensorId("input"), axis_id=v05.AxisId(a))) for a in spatial]],
        test_tensor=v05.FileDescr(source=folder / "test_output.npy"), postprocessing=post)
    return inp, out, x, xn, y


def _weights(model: Model, v05: Any, folder: Path, xn: np.ndarray) -> Any:
    """The three weight formats, TorchScript and ONNX checked against microsight's network."""
    import onnx

    module = model.module
    torch_version = v05.Version(torch.__version__.split("+")[0])
    torch.save(ExportedNetwork(module).state_dict(), folder / "weights.pt")
    script, _ = torchscript_bytes(model, torch.from_numpy(xn))
    (folder / "weights_torchscript.pt").write_bytes(script)
    graph, _ = onnx_bytes(model, torch.from_numpy(xn))
    (folder / "weights.onnx").write_bytes(graph)
    opset = max(o.version for o in onnx.load_from_string(graph).opset_import if o.domain in (
        "", "ai.onnx"))
    architecture = v05.ArchitectureFromLibraryDescr(
        callable=v05.Identifier("BioimageioNetwork"), import_from="microsight.engine.bioimageio",
        kwargs={"config": model.config.model_dump(mode="json"),
                "in_channels": module.in_channels, "out_channels": module.out_channels})
    return v05.WeightsDescr(
        pytorch_state_dict=v05.PytorchStateDictWeightsDescr(
            source=folder / "weights.pt", architecture=architecture,
            pytorch_version=torch_version),
        torchscript=v05.TorchscriptWeightsDescr(
            source=folder / "weights_torchscript.pt", pytorch_version=torch_version,
            parent="pytorch_state_dict"),
        onnx=v05.OnnxWeightsDescr(source=folder / "weights.onnx", opset_version=opset,
                                  parent="pytorch_state_dict"))


def _attachments(model: Model, v05: Any, folder: Path) -> list:
    """The microsight bundle files, copied next to the package's own files."""
    from microsight.engine.bundle import _BundleReader

    reader = _BundleReader(Path(model.path))
    found = []
    for name in BUNDLE_FILES:
        if reader.has(name):
            (folder / name).write_bytes(reader.read(name))
            found.append(v05.FileDescr(source=folder / name))
    return found


def _check(descr: Any) -> None:
    """Test-run the package with bioimageio.core (every weight format); raise on failure."""
    from bioimageio.core import test_model

    summary = test_model(descr)
    if summary.status != "passed":
        errors = [f"{d.name}: {e.msg}" for d in summary.details for e in d.errors]
        raise MicrosightError(f"the BioImage Model Zoo test of the package failed "
                              f"({'; '.join(errors)[:300]}); nothing was written")


def export_package(model: Model, path: str | Path, *, authors: list[str] | None = None,
                   license: str = "CC-BY-4.0") -> Path:
    """Write a model as a BioImage Model Zoo package (format 0.5 zip), tested first.

    Parameters
    ----------
    model : Model
        A model loaded from a bundle (its files are attached to the package).
    path : str or Path
        The ``.zip`` to write.
    authors : list of str, optional
        Names of the model's authors (default: "microsight user").
    license : str
        SPDX identifier of the weights' license.

    Returns
    -------
    Path
    """
    v05 = _spec()
    problem = bioimageio_problem(model.method)
    if problem:
        raise MicrosightError(problem)
    if model.path is None:
        raise MicrosightError("only a saved model (folder or .zip) can be packaged")
    from bioimageio.spec import save_bioimageio_package

    from microsight.engine.files import atomic_write_bytes

    model.module.eval().to("cpu")
    spatial = ["z", "y", "x"][-model.module.network_ndim:]
    pre, post, note = _processing(model, v05, spatial)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inp, out, x, xn, y = _tensors(model, v05, folder, pre, post)
        weights = _weights(model, v05, folder, xn)
        output = get_method(model.method).network_output
        (folder / "README.md").write_text(_card(model, note, output))
        descr = v05.ModelDescr(
            name=_name(model),
            description=f"{get_method(model.method).summary} (microsight {model.method})"[:1024],
            authors=[v05.Author(name=a) for a in (authors or ["microsight user"])],
            cite=_cites(v05, model.method), license=v05.LicenseId(license),
            documentation=v05.FileDescr(source=folder / "README.md"),
            covers=[v05.FileDescr(source=_cover(folder, x, y))],
            inputs=[inp], outputs=[out], weights=weights,
            attachments=_attachments(model, v05, folder),
            tags=["microsight", model.method, f"{model.module.network_ndim}d"],
            config={"microsight": {"method": model.method, "version": _version(),
                                   "processing": note}})
        _check(descr)
        zipped = folder / "package.zip"
        save_bioimageio_package(descr, output_path=zipped)
        return atomic_write_bytes(path, zipped.read_bytes())
