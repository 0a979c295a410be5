"""``microsight demo``: the whole workflow on bundled data, in a few minutes on a laptop.

A bundled nuclei image is the ground truth; Poisson-Gaussian noise makes the
low-light inputs. The top three quarters train a small CARE model (with its
own validation split), the bottom quarter, with fresh noise, is the test
image the model never saw. The demo then predicts and writes the report.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from microsight.api import evaluate, predict, train
from microsight.data.samples import poisson_gaussian, sample_nuclei
from microsight.errors import MicrosightError
from microsight.io import write_image

DEMO_CONFIG = {
    "name": "demo-care-nuclei",
    "method": {"method": "care", "depth": 2, "base_channels": 16},
    "data": {"patch_size": [64, 64], "batch_size": 16},
    "training": {"epochs": 25, "steps_per_epoch": 40, "learning_rate": 1e-3,
                 "early_stopping_patience": 8},
}


def make_demo_data(folder: Path) -> dict[str, Path]:
    """Write the demo's training and test pairs as TIFF files under ``folder``."""
    clean = sample_nuclei().astype("float32")
    split = clean.shape[0] * 3 // 4
    paths = {}
    for part, rows, seed in (("train", slice(0, split), 1), ("test", slice(split, None), 2)):
        gt = clean[rows]
        low = poisson_gaussian(gt, peak_photons=8.0, read_noise=2.0, seed=seed)
        paths[f"{part}_low"] = write_image(folder / part / "low" / "nuclei.tif", low, "YX")
        paths[f"{part}_high"] = write_image(folder / part / "high" / "nuclei.tif", gt, "YX")
    return paths


def run_demo(out: str | Path = "microsight-demo", *, epochs: int | None = None,
             overwrite: bool = True, console: Console | None = None) -> dict[str, object]:
    """Run the demo: make data, train CARE, predict the test image, write the report.

    Parameters
    ----------
    out : str or Path
        Folder for the data, model, prediction and report.
    epochs : int, optional
        Override the number of epochs (the default trains in about a minute).
    overwrite : bool
        Replace an earlier demo in ``out``.
    console : rich.console.Console, optional
        Where to print progress.

    Returns
    -------
    dict
        Paths written and the test PSNR of the input, the baseline and the network.
    """
    console = console or Console()
    out = Path(out)
    model_dir = out / "model"
    if model_dir.exists():
        if not overwrite:
            raise MicrosightError(f"{model_dir} exists; remove it or choose another folder")
        shutil.rmtree(model_dir)
    console.print(f"[bold]microsight demo[/bold]: writing everything to {out}/")
    data = make_demo_data(out / "data")
    console.print("1/3 training CARE on noisy/clean nuclei (top 3/4 of the image)...")
    config = dict(DEMO_CONFIG)
    if epochs:
        config["training"] = {**config["training"], "epochs": epochs}
    model = train("care", data["train_low"], data["train_high"], out=model_dir, config=config)
    console.print("2/3 restoring the held-out test image (bottom 1/4, fresh noise)...")
    restored = predict(model, data["test_low"], out=out / "restored.tif")
    console.print("3/3 evaluating against the ground truth and writing the report...")
    result = evaluate(model, data["test_low"], data["test_high"], report=out / "report.html")
    summary = {
        "model": model_dir, "restored": restored, "report": result.report_path,
        "psnr_input": result.mean("input (no restoration)", "psnr"),
        "psnr_gaussian": result.mean("gaussian (sigma=1)", "psnr"),
        "psnr_network": result.mean("network", "psnr"),
    }
    console.print(
        f"test PSNR: noisy input {summary['psnr_input']:.2f} dB, gaussian "
        f"{summary['psnr_gaussian']:.2f} dB, CARE {summary['psnr_network']:.2f} dB"
    )
    console.print(f"report: {result.report_path}")
    return summary
