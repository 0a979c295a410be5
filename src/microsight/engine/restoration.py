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

Baseline = Callable[[np.ndarray], np.ndarray]


def gaussian_baseline(sigma: float = 1.0) -> Baseline:
    """Gaussian smoothing of each channel over the spatial axes."""

    def smooth(item: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(item, sigma=(0,) + (sigma,) * (item.ndim - 1))

    return smooth


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
        """PSNR, SSIM, NRMSE after CARE's percentile normalization and range matching.

        Channels-first arrays are scored channel by channel and averaged.
        """
        per_channel = [restoration_metrics(p, t, range_match=True)
                       for p, t in zip(prediction, target, strict=True)]
        return {k: float(np.mean([m[k] for m in per_channel])) for k in per_channel[0]}

    @staticmethod
    def baselines() -> dict[str, Baseline]:
        """Classical methods every report compares the network with."""
        return {"input (no restoration)": lambda x: x, "gaussian (sigma=1)": gaussian_baseline()}

    @staticmethod
    def panels(input_item: np.ndarray, prediction: np.ndarray, target: np.ndarray
               ) -> dict[str, np.ndarray]:
        """Images shown side by side in the report for one item (first channel)."""
        gt = percentile_normalize(target[0])
        pred = affine_match(prediction[0], gt)
        return {"input": input_item[0], "prediction": pred, "target": gt,
                "|prediction - target|": np.abs(pred - gt)}
