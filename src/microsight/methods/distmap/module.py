"""Distance-map regression + marker watershed (after Naylor et al. 2019).

The network predicts a foreground probability and, for every object pixel,
its distance to the object border divided by the object's largest distance
(1 at the centre, falling to 0 at the border, also between touching objects).
Cores where the predicted distance exceeds a threshold become markers, and a
watershed on the negated distance grows them over the foreground.

Why this second representation: it is cheap on a CPU (one forward pass and a
watershed, no flow integration as in Cellpose), works unchanged in 3D, and,
unlike star-convex polygons, represents non-convex cells, since an object is
whatever its marker floods. Normalizing the distance per object makes one
marker threshold fit small and large objects alike.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from microsight.config import Configuration
from microsight.data.shapes import contact_zones, normalized_edt
from microsight.data.stitching import Objects, drop_small, empty_objects
from microsight.families.segmentation.module import SegmentationModule
from microsight.methods.distmap.config import DistMapConfig
from microsight.nn import UNet


def watershed_from_maps(foreground: np.ndarray, distance: np.ndarray, *,
                        mask_threshold: float, marker_threshold: float,
                        marker_h: float = 0.0) -> Objects:
    """Objects of one block from foreground probability and normalized distance maps.

    With ``marker_h`` > 0 the distance map is smoothed (Gaussian, 1 px) and only the
    parts of cores within ``marker_h`` of a peak that rises at least ``marker_h`` above
    the saddle to any higher peak seed objects: two nuclei whose cores meet above
    ``marker_threshold`` at a dip that deep get a seed each, while a weaker peak is
    flooded by its neighbour (fewer over-split nuclei, but some more merges).
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    mask = foreground > mask_threshold
    cores = mask & (distance > marker_threshold)
    if marker_h > 0:
        distance = ndimage.gaussian_filter(distance.astype(np.float32), 1.0)
        cores = mask & (distance > marker_threshold) & h_maxima(distance, marker_h).astype(bool)
    markers, n = ndimage.label(cores)
    if n == 0:
        return empty_objects(foreground.shape, foreground.ndim)
    index = np.arange(1, n + 1)
    seeds = np.asarray(ndimage.center_of_mass(mask, markers, index), np.float64).reshape(
        n, foreground.ndim)
    labels = watershed(-distance, markers, mask=mask).astype(np.int32)
    scores = np.asarray(ndimage.mean(foreground, labels, index), np.float64)
    return Objects(labels, seeds, np.nan_to_num(scores))


class DistMapModule(SegmentationModule):
    """U-Net from an image to two maps: foreground (logit) and normalized distance (logit)."""

    @classmethod
    def prob_channels(cls, config: Configuration) -> tuple[int, ...]:
        return (0, 1)

    @classmethod
    def network_channels(cls, config: Configuration) -> int:
        return 2

    @classmethod
    def threshold_grid(cls, config: Configuration) -> dict[str, list[float]]:
        return {"mask_threshold": [0.4, 0.5, 0.6],
                "marker_threshold": [0.3, 0.4, 0.5, 0.6, 0.7],
                "marker_h": [0.0, 0.2, 0.3]}

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: DistMapConfig = config.method
        return UNet(m.ndim, in_channels, out_channels, depth=m.depth,
                    base_channels=m.base_channels, kernel_size=3, batch_norm=m.batch_norm,
                    residual=False)

    def make_targets(self, labels: np.ndarray) -> np.ndarray:
        """Foreground, normalized distance and a per-pixel loss weight."""
        fg = (labels > 0).astype(np.float32)
        dist = np.stack([normalized_edt(lab) for lab in labels])
        weight = np.ones_like(fg)
        w = self.config.method.contact_weight
        if w > 0:
            weight += w * np.stack([contact_zones(lab) for lab in labels]).astype(np.float32)
        return np.stack([fg, dist, weight], axis=1)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prediction, target = prediction.float(), target.float()
        # Older targets have no weight channel.
        weight = target[:, 2:3] if target.shape[1] > 2 else torch.ones_like(target[:, :1])
        norm = weight.mean()
        bce = nn.functional.binary_cross_entropy_with_logits(
            prediction[:, :1], target[:, :1], weight=weight, reduction="mean") / norm
        dist = torch.mean(weight * (torch.sigmoid(prediction[:, 1:2]) - target[:, 1:2]) ** 2)
        return bce + self.config.method.distance_weight * 4 * dist / norm

    def point_estimate(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output.float())

    @classmethod
    def extract(cls, config: Configuration, dense: np.ndarray) -> Objects:
        m: DistMapConfig = config.method
        objects = watershed_from_maps(dense[0], dense[1], mask_threshold=m.mask_threshold,
                                      marker_threshold=m.marker_threshold,
                                      marker_h=m.marker_h)
        return drop_small(objects, m.min_size)
