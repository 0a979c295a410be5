"""Configuration of isotropic restoration (``care-iso``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from microsight.families.restoration.config import RestorationUNetConfig


class CareIsoConfig(RestorationUNetConfig):
    """Isotropic CARE: restore the axial resolution of anisotropic ZYX stacks.

    A 2D U-Net learns from the lateral (XY) planes, degraded along one
    lateral axis the way the axial direction was acquired (blur with the
    axial PSF, subsampling by the anisotropy factor, interpolation back).
    At prediction the stack is interpolated along Z by the anisotropy factor
    and the network restores its XZ and YZ slices; the two results are
    averaged. Train with ``--input stacks/`` only (no ``--target``); the data
    are ZYX stacks (``item_ndim`` 3) while the network is 2D
    (``data.patch_size`` has two sizes). 90-degree rotations are always
    switched off for this method (they would turn the degraded axis).
    """

    method: Literal["care-iso"] = "care-iso"
    ndim: Literal[2] = Field(2, description="The network is 2D; the data are ZYX stacks.")
    anisotropy: float | None = Field(
        None, gt=1, le=50,
        description="Axial over lateral pixel size (Z step / XY pixel). None: taken from the "
                    "pixel sizes of the first training stack (Z / X) and saved here.")
    psf_sigma_z: float | None = Field(
        None, ge=0, le=50,
        description="Sigma of the axial blur in lateral pixels; None: anisotropy / 2.")
    interpolation: Literal["linear", "nearest"] = Field(
        "linear", description="How the subsampled axis is brought back to full size, in "
                              "training and (along Z) at prediction.")
    transposed_planes: bool = Field(
        True, description="Also train on the transposed XY planes (structures along both "
                          "lateral axes get degraded).")

    @property
    def item_ndim(self) -> int:
        """Spatial axes of the items read for training and prediction: ZYX stacks."""
        return 3

    @property
    def order(self) -> int:
        """Interpolation order (0 nearest, 1 linear)."""
        return 0 if self.interpolation == "nearest" else 1

    def psf_sigma(self, anisotropy: float) -> float:
        """Axial blur in lateral pixels (``psf_sigma_z`` or ``anisotropy / 2``)."""
        return anisotropy / 2 if self.psf_sigma_z is None else float(self.psf_sigma_z)
