"""Screenshots of the napari plugin in use, for docs/napari.md.

Run under a virtual display (napari's canvas needs OpenGL)::

    xvfb-run -a env QT_QPA_PLATFORM=xcb python docs/napari_screenshots.py

Trains a small CARE model in the Train widget on a noisy crop of the bundled
nuclei image, predicts a held-out crop with the Predict widget and evaluates it
with the Evaluate widget; one PNG per widget in docs/images/ (a few minutes on a
2-core CPU; pass a model folder to reuse it and skip training).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QEventLoop

from microsight.data.samples import poisson_gaussian, sample_nuclei
from microsight.napari.evaluate_widget import EvaluateWidget
from microsight.napari.predict_widget import PredictWidget
from microsight.napari.train_widget import TrainWidget

IMAGES = Path(__file__).parent / "images"
WIDTH = 1100  # saved screenshots are scaled to this width to stay small


def wait(worker) -> None:
    """Run the Qt event loop until a widget's worker thread has finished."""
    loop = QEventLoop()
    worker.finished.connect(loop.quit)
    loop.exec()


def shoot(viewer: napari.Viewer, name: str) -> None:
    """Save the whole window (canvas and docked widgets) as a small PNG."""
    from PIL import Image

    for _ in range(5):
        napari.qt.get_qapp().processEvents()
    pixels = viewer.screenshot(canvas_only=False, flash=False)
    image = Image.fromarray(pixels[..., :3])
    image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    save_small(image, IMAGES / f"napari_{name}.png")


def save_small(image, path: Path, limit_kb: int = 200) -> None:
    """Save a PIL image as a palette PNG: fewer colours, then smaller, until under the limit.

    Noisy images compress badly; they need the smaller sizes.
    """
    from PIL import Image

    for scale in (1.0, 0.85, 0.7):
        size = (round(image.width * scale), round(image.height * scale))
        small = image.resize(size, Image.LANCZOS) if scale < 1 else image
        for colors in (256, 128, 64):
            small.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(
                path, optimize=True)
            if path.stat().st_size < limit_kb * 1024:
                print(f"{path}: {path.stat().st_size / 1024:.0f} KB, {size[0]} px wide, "
                      f"{colors} colours")
                return
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB (over {limit_kb} KB)")


def main(model: str | None = None) -> None:
    """Train (unless ``model`` is given), predict and evaluate; one screenshot each."""
    # As `microsight demo`: the top three quarters train, the bottom quarter tests.
    clean = sample_nuclei().astype(np.float32)
    split = clean.shape[0] * 3 // 4
    train_high, test_high = clean[:split], clean[split:]
    train_low = poisson_gaussian(train_high, peak_photons=8, read_noise=2, seed=1)
    test_low = poisson_gaussian(test_high, peak_photons=8, read_noise=2, seed=2)
    out = Path(model) if model else Path(tempfile.mkdtemp(prefix="microsight-shots-")) / "care"

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    if model is None:
        train_screenshot(viewer, train_low, train_high, out)
    predict_and_evaluate_screenshots(viewer, test_low, test_high, out)
    viewer.close()


def train_screenshot(viewer: napari.Viewer, low: np.ndarray, high: np.ndarray,
                     out: Path) -> None:
    """Train CARE in the Train widget (about 400 steps) and shoot the curves."""
    viewer.add_image(high, name="clean (train)", visible=False)
    viewer.add_image(low, name="noisy (train)")
    viewer.reset_view()
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="microsight: Train", area="right")
    train.method.setCurrentText("care")
    train.input_layer.setCurrentText("noisy (train)")
    train.target_layer.setCurrentText("clean (train)")
    train.out.setText(str(out))
    for key, value in {("training", "epochs"): 10, ("training", "steps_per_epoch"): 40,
                       ("training", "learning_rate"): 1e-3, ("data", "patch_size"): [64, 64],
                       ("data", "batch_size"): 16, ("method", "base_channels"): 16}.items():
        train.form.set_value(key, value)
    wait(train.run())
    shoot(viewer, "train")


def predict_and_evaluate_screenshots(viewer: napari.Viewer, test_low: np.ndarray,
                                     test_high: np.ndarray, out: Path) -> None:
    """Predict the held-out strip (with uncertainty), then evaluate it; shoot both."""
    viewer.window.remove_dock_widget("all")
    viewer.layers.clear()
    viewer.add_image(test_low, name="noisy (held out)")
    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="microsight: Predict", area="right")
    predict.model.setText(str(out))
    predict.image.setCurrentText("noisy (held out)")
    predict.uncertainty.setCurrentText("test-time augmentation")
    wait(predict.run())
    restored = viewer.layers["noisy (held out) care"]
    restored.contrast_limits = viewer.layers["noisy (held out)"].contrast_limits = (0, 255)
    # The strips are wide: one above the other.
    viewer.grid.shape = (3, 1)
    viewer.grid.enabled = True
    viewer.reset_view()
    shoot(viewer, "predict")

    viewer.layers.remove("noisy (held out) care uncertainty")
    viewer.add_image(test_high, name="clean (held out)")
    viewer.layers.move(len(viewer.layers) - 1, 0)
    viewer.reset_view()
    viewer.window.remove_dock_widget("all")
    evaluate = EvaluateWidget(viewer)
    viewer.window.add_dock_widget(evaluate, name="microsight: Evaluate", area="right")
    evaluate.model.setText(str(out))
    evaluate.input_layer.setCurrentText("noisy (held out)")
    evaluate.target_layer.setCurrentText("clean (held out)")
    wait(evaluate.run())
    shoot(viewer, "evaluate")


def shipped_screenshot() -> None:
    """The shipped H&E model, chosen from the menu, on the bundled colour H&E image."""
    from microsight.data.samples import sample_nuclei_he_annotated
    from microsight.napari.predict_widget import shipped_choices

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    image, _ = sample_nuclei_he_annotated()
    viewer.add_image(image, name="H&E")
    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="microsight: Predict", area="right")
    entry = next(e for e, name in shipped_choices().items() if name == "nuclei-he")
    predict.shipped.setCurrentText(entry)
    predict.shipped.textActivated.emit(entry)
    wait(predict.run())
    viewer.layers[-1].contour = 2  # outlines over the stain
    viewer.reset_view()
    shoot(viewer, "shipped")
    viewer.close()


if __name__ == "__main__":
    # --shipped: only the shipped-model shot (no training). An existing model folder
    # skips training (reshoots Predict and Evaluate only).
    if sys.argv[1:] == ["--shipped"]:
        shipped_screenshot()
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else None)
        shipped_screenshot()
