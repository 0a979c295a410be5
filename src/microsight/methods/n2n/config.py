"""Configuration of Noise2Noise: CARE's knobs, trained on pairs of noisy frames."""

from __future__ import annotations

from typing import Literal

from microsight.methods.care.config import CareConfig


class N2NConfig(CareConfig):
    """Noise2Noise: a U-Net trained on pairs of independent noisy frames of the same field.

    Same network and knobs as CARE. The target is a second noisy acquisition,
    not a clean image: with zero-mean noise independent between the two
    frames, regressing one onto the other with ``loss: mse`` converges to the
    clean signal (``l1`` converges to the median, for noise with outliers).
    """

    method: Literal["n2n"] = "n2n"
