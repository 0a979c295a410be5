"""The demo's whole workflow (shortened to one epoch) on the bundled sample."""

from __future__ import annotations

import numpy as np
from rich.console import Console

from microsight.demo import run_demo
from microsight.io import read_image


def test_demo_writes_model_result_and_report(tmp_path):
    summary = run_demo(tmp_path / "demo", epochs=1, console=Console(quiet=True))
    assert (tmp_path / "demo" / "model" / "weights.safetensors").is_file()
    restored = read_image(summary["restored"])
    assert restored.shape == (128, 512)
    assert np.isfinite(restored.numpy()).all()
    html = summary["report"].read_text()
    assert "Test metrics" in html and "data:image/png;base64," in html
    assert np.isfinite(summary["psnr_network"])
