"""Star-convex polygon instance segmentation (object probability + radial distances)."""

from microsight.methods.starconvex.config import StarConvexConfig
from microsight.methods.starconvex.module import StarConvexModule

__all__ = ["StarConvexConfig", "StarConvexModule"]
