"""What every image-restoration method shares: paired data, metrics, baselines, report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from microsight.config import Configuration
from microsight.data.pairs import TrainingSet
from microsight.engine.training import prepare_supervised
from microsight.errors import MicrosightError
from microsight.metrics import affine_match, percentile_normalize, restoration_metrics
from microsight.metrics.resolution import decorrelation_resolution
from microsight.metrics.squirrel import resolution_scaled_error

Baseline = Callable[[np.ndarray], np.ndarray]


def gaussian_baseline(sigma: float = 1.0) -> Baseline:
    """Gaussian smoothing of each channel over the spatial axes."""

    def smooth(item: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(item, sigma=(0,) + (sigma,) * (item.ndim - 1))

    return smooth


def noise_sigma(image: np.ndarray) -> float:
    """Gaussian noise level of an image (Immerkaer 1996), averaged over 2D planes.

    Filters each plane with a kernel that cancels smooth structure and takes the
    mean absolute response, which is robust and needs no wavelet package.
    """
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    planes = image.reshape(-1, *image.shape[-2:]).astype(np.float64)
    sigmas = []
    for plane in planes:
        response = ndimage.convolve(plane, kernel)[1:-1, 1:-1]
        sigmas.append(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)
    return float(np.mean(sigmas))


def nlm_baseline() -> Baseline:
    """Non-local means (Buades et al. 2005) with the noise level estimated per channel."""
    from skimage.restoration import denoise_nl_means

    def denoise(item: np.ndarray) -> np.ndarray:
        out = np.empty_like(item, dtype=np.float32)
        for c, channel in enumerate(item):
            sigma = noise_sigma(channel)
            out[c] = denoise_nl_means(channel, h=0.8 * sigma, sigma=sigma, patch_size=5,
                                      patch_distance=6, fast_mode=True)
        return out

    return denoise


def richardson_lucy_baseline(psf_sigma: float = 1.0, iterations: int = 10) -> Baseline:
    """Richardson-Lucy deconvolution with a Gaussian PSF of ``psf_sigma`` pixels."""
    from skimage.restoration import richardson_lucy

    def deconvolve(item: np.ndarray) -> np.ndarray:
        out = np.empty_like(item, dtype=np.float32)
        radius = max(1, int(np.ceil(3 * psf_sigma)))
        for c, channel in enumerate(item):
            delta = np.zeros((2 * radius + 1,) * channel.ndim, np.float32)
            delta[(radius,) * channel.ndim] = 1
            psf = ndimage.gaussian_filter(delta, psf_sigma)
            # RL needs non-negative data; scale to [0, 1] and back.
            lo, hi = float(channel.min()), float(channel.max())
            scaled = (channel - lo) / max(hi - lo, 1e-12)
            out[c] = richardson_lucy(scaled, psf / psf.sum(), num_iter=iterations,
                                     clip=False) * (hi - lo) + lo
        return out

    return deconvolve


class RestorationMixin:
    """Hooks of image-to-image restoration methods used by training and evaluation."""

    needs_target = True
    report_family = "restoration"

    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Load and normalize training pairs (input -> target)."""
        if cls.needs_target and target_path is None:
            raise MicrosightError(
                f"method {cls.method_name} learns from pairs: pass --target with the "
                "high-quality images"
            )
        return prepare_supervised(config, input_path, target_path, axes)

    @staticmethod
    def score(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """PSNR, SSIM, NRMSE after CARE's percentile normalization and range matching,
        and SQUIRREL's resolution-scaled error (RSE, normalized target units) and
        Pearson correlation (RSP).

        Channels-first arrays are scored channel by channel and averaged.
        """
        per_channel = []
        for p, t in zip(prediction, target, strict=True):
            m = restoration_metrics(p, t, range_match=True)
            sq = resolution_scaled_error(percentile_normalize(t), p)
            per_channel.append({**m, "rse": sq.rse, "rsp": sq.rsp})
        return {k: float(np.mean([m[k] for m in per_channel])) for k in per_channel[0]}

    @staticmethod
    def baselines(config: Configuration) -> dict[str, Baseline]:
        """Classical methods every report compares the network with."""
        return {
            "input (no restoration)": lambda x: x,
            "gaussian (sigma=1)": gaussian_baseline(),
            "non-local means": nlm_baseline(),
            "richardson-lucy (sigma=1, 10 it.)": richardson_lucy_baseline(),
        }

    @staticmethod
    def panels(input_item: np.ndarray, prediction: np.ndarray, target: np.ndarray
               ) -> dict[str, np.ndarray]:
        """Images shown side by side in the report for one item (first channel)."""
        gt = percentile_normalize(target[0])
        pred = affine_match(prediction[0], gt)
        return {"input": input_item[0], "prediction": pred, "target": gt,
                "|prediction - target|": np.abs(pred - gt),
                "resolution-scaled error": resolution_scaled_error(gt, prediction[0]).error_map}

    @classmethod
    def report_sections(cls, report: Any, context: Any) -> None:
        """Examples and per-image metrics, then the resolution of the example images."""
        super().report_sections(report, context)  # type: ignore[misc]
        pixel = context.pixel_size
        scale = int(getattr(context.model.module, "output_scale", 1))
        rows = []
        for name, images in context.panels:
            row: dict[str, Any] = {"image": name}
            for key in ("input", "prediction", "target"):
                if key in images:
                    try:
                        res = decorrelation_resolution(images[key])
                    except MicrosightError:  # too small (e.g. a thin stack)
                        res = float("nan")
                    row[f"{key} (px)"] = res
                    if pixel:
                        # Predictions and targets of super-resolution lie on a finer grid.
                        row[f"{key} (um)"] = res * pixel / (1 if key == "input" else scale)
            rows.append(row)
        if rows:
            report.add_table(
                "Resolution (decorrelation analysis)", rows,
                note="Single-image resolution estimate (Descloux et al. 2019): the period of the "
                     "highest spatial frequency still above the noise; NaN where no signal peak "
                     "is found. RSE/RSP columns: SQUIRREL resolution-scaled error and Pearson "
                     "correlation after the best blur, gain and offset (Culley et al. 2018).")
