"""Networks that leave microsight: TorchScript (Fiji/deepImageJ, QuPath) and ONNX.

The exported network is what microsight's tiled prediction runs on each tile:
normalized input tiles ``(B, C, [Z,] Y, X)`` in, the method's point estimate out
(probabilities after the sigmoid/softmax for segmentation and detection maps).
Normalization and post-processing stay outside the network; the file's metadata
(``microsight.json``) says what they are, so that another program can apply them.

Before a file is written its network is run on a test input and compared with
microsight's own network output; the largest difference, relative to the
output's range, is recorded in the metadata, and a network that disagrees by
more than :data:`TOLERANCE` is not written.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microsight.config import available_methods, get_method
from microsight.engine.bundle import Model, _version
from microsight.engine.files import atomic_write_bytes
from microsight.errors import MicrosightError

#: Formats of :func:`export_network`.
NETWORK_FORMATS = ("torchscript", "onnx")

#: Largest accepted difference between the exported and the own network output,
#: relative to the range of the own output.
TOLERANCE = 1e-4

# Methods whose network maps images to images, and what to do with the maps.


def export_problem(method: str) -> str | None:
    """Why a method's network cannot be exported, or None when it can.

    This is the one place that decides which methods export.

    Parameters
    ----------
    method : str
        A registered method name.

    Returns
    -------
    str or None
    """
    if get_method(method).exports:
        return None
    exportable = [name for name, spec in available_methods().items() if spec.exports]
    return (f"method {method} cannot be exported: its network does not map images to images "
            f"(exportable: {', '.join(exportable)})")


class ExportedNetwork(nn.Module):
    """The network of a loaded model with its point estimate, as prediction runs it."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.network = module.network
        if getattr(module, "reference", None) is not None:
            self.reference = module.reference
        # Kept outside the module tree: a Lightning module cannot be traced, but its
        # forward and point estimate (plain tensor code) can.
        self.__dict__["_owner"] = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        owner = self.__dict__["_owner"]
        return owner.point_estimate(owner(x)).float()


def test_input(model: Model, seed: int = 0) -> torch.Tensor:
    """A reproducible normalized test tile ``(1, C, *S)`` whose sides fit the network."""
    module = model.module
    ndim = module.network_ndim
    div = max(1, module.divisor)
    side = max(2 * div, 64 if ndim == 2 else 24)
    side = -(-side // div) * div
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((1, module.in_channels, *([side] * ndim)), generator=gen)


def compare(reference: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Largest absolute difference, the reference's range and their ratio."""
    reference, output = np.asarray(reference, np.float64), np.asarray(output, np.float64)
    if reference.shape != output.shape:
        raise MicrosightError(f"the exported network returns shape {output.shape}, "
                              f"microsight's {reference.shape}")
    diff = float(np.max(np.abs(reference - output)))
    span = float(np.ptp(reference))
    return {"max_abs_diff": diff, "output_range": span,
            "relative_diff": diff / span if span > 0 else diff}


def metadata(model: Model, fmt: str, x: torch.Tensor, check: dict[str, float]) -> dict[str, Any]:
    """What a user of the exported file needs: axes, normalization, post-processing, check."""
    module = model.module
    ndim = module.network_ndim
    notes = type(module).export_notes(model)
    return {
        "format": "microsight-network",
        "weights_format": fmt,
        "name": model.config.name,
        "method": model.method,
        "microsight_version": _version(),
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "axes": "BC" + ("ZYX" if ndim == 3 else "YX"),
        "in_channels": module.in_channels,
        "out_channels": int(module.out_channels),
        "size_multiple": max(1, module.divisor),
        "output_scale": int(module.output_scale),
        "normalization": model.normalization,
        "input": "percentile-normalized: (x - low) / (high - low) with the 'normalization' "
                 "values (dataset mode) or this image's percentiles (per-image mode)",
        "output": get_method(model.method).network_output,
        **{f"{key[:-1]}_channel_names": notes[key] for key in ("inputs", "outputs")
           if notes.get(key)},
        "processing": notes.get("steps", []),
        "check": {"test_shape": list(x.shape), **check, "tolerance": TOLERANCE},
    }


def _reference(model: Model, x: torch.Tensor) -> np.ndarray:
    module = model.module.eval().to("cpu")
    return module.predict_batch(x).float().numpy()


def _trace(model: Model, x: torch.Tensor) -> torch.jit.ScriptModule:
    # Tracing, not scripting: scripting trips on small typing details of the networks.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(ExportedNetwork(model.module).eval(), x, check_trace=False)


def torchscript_bytes(model: Model, x: torch.Tensor | None = None) -> tuple[bytes, dict]:
    """Trace the network, check it on a test input, return the file and its metadata."""
    x = test_input(model) if x is None else x
    traced = _trace(model, x)
    raw = io.BytesIO()
    torch.jit.save(traced, raw)
    raw.seek(0)
    with torch.no_grad():
        out = torch.jit.load(raw, map_location="cpu")(x).numpy()
    meta = _checked(model, "torchscript", x, out)
    buf = io.BytesIO()
    torch.jit.save(traced, buf, _extra_files={"microsight.json": json.dumps(meta)})
    return buf.getvalue(), meta


def _onnx_modules() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise MicrosightError('ONNX export needs onnx, onnxscript and onnxruntime; install '
                              'them with pip install "microsight[export]"') from None
    return onnx, onnxruntime


@contextlib.contextmanager
def _quiet():
    """The exporter logs and warns a lot about things that do not matter here."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def run_onnx(data: bytes, x: np.ndarray) -> np.ndarray:
    """Run an ONNX network with onnxruntime on the CPU."""
    _, ort = _onnx_modules()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(x, np.float32)})[0]


def onnx_bytes(model: Model, x: torch.Tensor | None = None) -> tuple[bytes, dict]:
    """Export the network with torch's dynamo ONNX exporter (any batch and tile size)."""
    onnx, _ = _onnx_modules()
    x = test_input(model) if x is None else x
    auto = torch.export.Dim.AUTO
    dims = {0: auto, **{i: auto for i in range(2, x.ndim)}}
    net = ExportedNetwork(model.module).eval()
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(net, (x,), dynamo=True, external_data=False,
                                        input_names=["input"], output_names=["output"],
                                        dynamic_shapes=({**dims},), verbose=False)
    except Exception as exc:
        raise MicrosightError(f"ONNX export of {model.method} failed "
                              f"({str(exc).splitlines()[0][:200]})") from None
    proto = program.model_proto
    out = run_onnx(proto.SerializeToString(), x.numpy())
    meta = _checked(model, "onnx", x, out)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "microsight.json", json.dumps(meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString(), meta


def _checked(model: Model, fmt: str, x: torch.Tensor, out: np.ndarray) -> dict[str, Any]:
    check = compare(_reference(model, x), out)
    if not check["relative_diff"] <= TOLERANCE:
        raise MicrosightError(
            f"the {fmt} network differs from microsight's by {check['relative_diff']:.2g} of "
            f"the output range (tolerance {TOLERANCE:g}); nothing was written")
    return metadata(model, fmt, x, check)


def export_network(model: Model, path: str | Path, fmt: str) -> tuple[Path, dict[str, Any]]:
    """Write a model's network as TorchScript or ONNX, checked against microsight's output.

    Parameters
    ----------
    model : Model
        A loaded model bundle.
    path : str or Path
        Output file (``.pt`` for TorchScript and ``.onnx`` are the usual names).
    fmt : {"torchscript", "onnx"}
        The format.

    Returns
    -------
    tuple of (Path, dict)
        The file written and its metadata (also stored inside it as
        ``microsight.json``), with the check's ``max_abs_diff``, ``output_range``
        and ``relative_diff``.
    """
    if fmt not in NETWORK_FORMATS:
        raise MicrosightError(f"unknown export format {fmt!r}; use one of "
                              f"{', '.join(NETWORK_FORMATS)}")
    problem = export_problem(model.method)
    if problem:
        raise MicrosightError(problem)
    model.module.eval().to("cpu")
    data, meta = (torchscript_bytes if fmt == "torchscript" else onnx_bytes)(model)
    return atomic_write_bytes(path, data), meta


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``microsight.json`` metadata of an exported TorchScript or ONNX file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        onnx, _ = _onnx_modules()
        proto = onnx.load(str(path), load_external_data=False)
        found = {p.key: p.value for p in proto.metadata_props}
        return json.loads(found.get("microsight.json", "{}"))
    extra = {"microsight.json": ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra["microsight.json"] or "{}")
