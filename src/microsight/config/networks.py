"""Network sections shared by many methods, declared once.

:class:`UNetConfig` holds the U-Net fields (depth, width, kernel, batch
normalization). A method built on a U-Net subclasses it and states only the
defaults that differ, in ``unet_defaults``; the field names, bounds and
descriptions stay here, so every form, schema and YAML file shows the same
thing for every method.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from microsight.config.base import MethodConfig


class UNetConfig(MethodConfig):
    """The U-Net knobs of every method whose network is a U-Net (``nn.UNet``)."""

    #: Defaults that differ from the ones below, e.g. ``{"depth": 3}``.
    unet_defaults: ClassVar[dict[str, Any]] = {}

    depth: int = Field(2, ge=1, le=5, description="Number of U-Net down-samplings (each "
                       "halves the image; deeper sees more context).")
    base_channels: int = Field(32, ge=4, le=256, description="U-Net features at the first "
                               "level (doubled at every level; wider learns more, slower).")
    kernel_size: int = Field(3, ge=3, le=7, description="U-Net convolution kernel size (odd).")
    batch_norm: bool = Field(False, description="Batch normalization after U-Net convolutions.")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        own = cls.__dict__.get("unet_defaults")
        if own:
            unknown = set(own) - set(UNetConfig.model_fields)
            if unknown:
                raise TypeError(f"{cls.__name__}.unet_defaults names unknown fields {unknown}")
            for name, value in own.items():
                cls.model_fields[name].default = value
            cls.model_rebuild(force=True)

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {value}")
        return value

    @property
    def divisor(self) -> int:
        """Patch and tile sizes must be multiples of this."""
        return 2**self.depth

    @property
    def unet(self) -> dict[str, Any]:
        """The U-Net fields, as keyword arguments of ``nn.UNet``."""
        return {k: getattr(self, k) for k in ("depth", "base_channels", "kernel_size",
                                              "batch_norm")}
