"""Noise2Noise (Lehtinen et al., ICML 2018): denoising from pairs of noisy frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microsight.config import Configuration
from microsight.data.pairs import TrainingSet
from microsight.errors import MicrosightError
from microsight.methods.care.module import CareModule


class N2NModule(CareModule):
    """CARE's U-Net regression, with a second noisy frame as the target."""

    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        if target_path is None:
            raise MicrosightError(
                "method n2n learns from pairs of noisy frames: pass --target with a second, "
                "independent noisy acquisition of the same fields (paired by file name)"
            )
        return super().prepare_training(config, input_path, target_path, axes)
