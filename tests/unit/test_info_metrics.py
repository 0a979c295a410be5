"""``info`` shows only the validation scores a method declares."""

import shutil
from pathlib import Path

from microsight.api import info

BUNDLES = Path(__file__).parents[1] / "data" / "bundles_cf7f17a"


def test_old_segmentation_bundle_shows_no_psnr(tmp_path):
    folder = tmp_path / "distmap"
    shutil.copytree(BUNDLES / "distmap", folder)
    qc = info(folder)["qc"]
    assert "best_val_psnr" not in qc  # the stored value says nothing about segmentation
    assert qc["best_epoch"] is not None


def test_restoration_bundle_keeps_its_psnr(tmp_path):
    folder = tmp_path / "care"
    shutil.copytree(BUNDLES / "care", folder)
    assert info(folder)["qc"]["best_val_psnr"] is not None
