"""Label-free prediction end to end: train (U-Net, then GAN refinement), predict, evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage

from microsight import evaluate, load_model, predict, train
from microsight.io import read_image

from ..conftest import blobs

TINY = {
    "name": "tiny-labelfree",
    "method": {"method": "labelfree", "depth": 1, "base_channels": 4, "z_as_channels": True,
               "target_names": ["nuclei", "cyto"]},
    "data": {"patch_size": [16, 16], "batch_size": 4},
    "training": {"epochs": 2, "steps_per_epoch": 3, "val_tile": 32},
}


def phase_stack(fluo: np.ndarray, planes: int = 3) -> np.ndarray:
    """A z-stack with phase-contrast-like contrast: halos whose sign flips through focus."""
    edges = ndimage.gaussian_laplace(fluo, 2.0)
    return np.stack([100 + (z - planes // 2 + 0.5) * 3 * edges - 0.2 * fluo
                     for z in range(planes)]).astype(np.float32)


def write_labelfree(root: Path, n: int = 2, size: int = 32) -> tuple[Path, Path]:
    """Folders phase/ (ZYX stacks) and fluo/ (CYX, 2 targets) paired by file name."""
    phase, fluo = root / "phase", root / "fluo"
    phase.mkdir()
    fluo.mkdir()
    for i in range(n):
        nuclei = blobs((size, size), i)
        cyto = ndimage.gaussian_filter(nuclei, 3) * 3 + 5
        tifffile.imwrite(phase / f"f{i}.tif", phase_stack(nuclei), metadata={"axes": "ZYX"})
        tifffile.imwrite(fluo / f"f{i}.tif", np.stack([nuclei, cyto]).astype(np.float32),
                         metadata={"axes": "CYX"})
    return phase, fluo


@pytest.fixture(scope="module")
def unet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("labelfree")
    phase, fluo = write_labelfree(root, n=2, size=32)
    model = train("labelfree", phase, fluo, out=root / "unet", config=TINY, progress=False)
    return model, phase, fluo, root


def test_unet_trains_and_predicts_in_target_scale(unet):
    model, phase, _, _ = unet
    assert (model.module.in_channels, model.module.out_channels) == (3, 2)
    assert model.qc["data"]["registration"], "registration was checked before training"
    assert not any(r["misaligned"] for r in model.qc["data"]["registration"])
    # The ZYX stack's planes are read as channels (z_as_channels), before the
    # out-of-distribution check as well as for the prediction ...
    image = type(model.module).input_image(model, read_image(phase / "f0.tif"))
    assert image.axes == "CYX"
    pred = predict(model.path, phase / "f0.tif")
    assert pred.shape == (2, 32, 32)
    # ... which is what naming the planes channels does.
    assert np.allclose(predict(model.path, phase / "f0.tif", axes="CYX"), pred, atol=1e-4)
    assert np.isfinite(pred).all()


def test_outputs_come_back_in_each_targets_scale(unet):
    model, phase, _, _ = unet
    head = model.module.network.head
    saved = {k: v.clone() for k, v in head.state_dict().items()}
    try:
        # A network answering 0.5 (normalized) everywhere must return, per target, the
        # middle of that target's own percentile range.
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.constant_(head.bias, 0.5)
        pred = predict(model, phase / "f0.tif", axes="CYX")
    finally:
        head.load_state_dict(saved)
    norm = model.normalization["target"]
    for c in range(2):
        expected = norm["low"][c] + 0.5 * (norm["high"][c] - norm["low"][c])
        assert np.allclose(pred[c], expected, rtol=1e-4)
    assert not np.isclose(pred[0].mean(), pred[1].mean())


def test_evaluate_reports_per_target_and_writes_error_maps(unet, tmp_path):
    model, phase, fluo, _ = unet
    result = evaluate(model, phase / "f0.tif", fluo / "f0.tif", report=tmp_path / "eval.html")
    assert {r["image"] for r in result.rows} == {"f0.tif"}
    sources = {r["source"] for r in result.summary}
    assert {"network", "linear regression (inputs + smoothed copies)"} <= sources
    row = result.summary[0]
    for key in ("pearson nuclei", "ssim cyto", "nrmse nuclei"):
        assert np.isfinite(row[key])
    maps = sorted((tmp_path / "eval_error_maps").glob("*.tif"))
    assert len(maps) == 1
    error = tifffile.imread(maps[0])
    assert error.shape == (2, 32, 32) and (error >= 0).all()
    assert "Test metrics per target" in result.report_path.read_text()


def test_gan_refinement_keeps_both_outputs(unet, tmp_path):
    model, phase, fluo, _ = unet
    cfg = {**TINY, "method": {**TINY["method"], "gan": True, "refine_from": str(model.path),
                              "disc_layers": 2, "disc_channels": 4}}
    gan = train("labelfree", phase, fluo, out=tmp_path / "gan", config=cfg, progress=False)
    assert int(gan.module.refine_started) == 1
    # The kept U-Net is exactly the one refined; the generator has moved away from it.
    ref = model.module.network.state_dict()
    for k, v in gan.module.reference.state_dict().items():
        assert np.allclose(v.numpy(), ref[k].numpy())
    moved = [not np.allclose(v.numpy(), ref[k].numpy())
             for k, v in gan.module.network.state_dict().items()]
    assert any(moved)
    reloaded = load_model(gan.path)
    result = evaluate(reloaded, phase / "f1.tif", fluo / "f1.tif", report=tmp_path / "gan.html")
    sources = [r["source"] for r in result.summary]
    assert "U-Net before GAN refinement" in sources and "network" in sources
    html = result.report_path.read_text()
    assert "GAN-refined" in html or "Adversarial refinement" in html


def test_finetuning_starts_from_the_given_bundle(unet, tmp_path):
    model, phase, fluo, _ = unet
    cfg = {**TINY, "method": {**TINY["method"], "refine_from": str(model.path)},
           "training": {**TINY["training"], "epochs": 1, "learning_rate": 1e-12}}
    tuned = train("labelfree", phase, fluo, out=tmp_path / "tuned", config=cfg, progress=False)
    assert int(tuned.module.refine_started) == 1 and not hasattr(tuned.module, "reference")
    ref = model.module.network.state_dict()
    for k, v in tuned.module.network.state_dict().items():
        assert np.allclose(v.numpy(), ref[k].numpy(), atol=1e-6), k
