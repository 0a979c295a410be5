"""Star-convex polygons (StarDist-style): object probability + radial distances, polygon NMS.

The network predicts for every pixel the probability of being an object
centre (trained on each object's normalized distance transform, highest at
its centre) and the distances to the object border along ``n_rays`` rays.
Prediction takes the local maxima of the probability above a threshold as
candidate centres, turns each into the polygon its distances describe, and
keeps polygons by decreasing probability unless they overlap an already kept
one by more than the NMS threshold. Good for roundish, touching nuclei; not for
non-convex cells (use ``distmap``).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from microsight.config import Configuration
from microsight.data.shapes import normalized_edt, polygon_nms, polygon_vertices, star_distances
from microsight.data.stitching import Objects, drop_small, empty_objects
from microsight.families.segmentation.module import SegmentationModule
from microsight.methods.starconvex.config import StarConvexConfig
from microsight.nn import UNet


def centre_candidates(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels ``(N, 2)`` that are local maxima (3x3) of ``prob`` above ``threshold``."""
    peak = (prob >= threshold) & (prob == ndimage.maximum_filter(prob, size=3))
    return np.argwhere(peak)


def polygons_from_maps(prob: np.ndarray, dist: np.ndarray, *, prob_threshold: float,
                       nms_threshold: float) -> Objects:
    """Objects of one block from its probability ``(Y, X)`` and distances ``(R, Y, X)``."""
    centres = centre_candidates(prob, prob_threshold)
    if len(centres) == 0:
        return empty_objects(prob.shape, 2)
    scores = prob[centres[:, 0], centres[:, 1]]
    d = np.maximum(dist[:, centres[:, 0], centres[:, 1]].T, 0.5)
    vertices = polygon_vertices(centres, d)
    kept, labels = polygon_nms(vertices, scores, prob.shape, nms_threshold)
    return Objects(labels, centres[kept].astype(np.float64), scores[kept], vertices[kept])


class StarConvexModule(SegmentationModule):
    """U-Net from an image to 1 + n_rays maps: centre probability (logit), distances."""

    dihedral_maps = False  # ray k points in a fixed direction

    @classmethod
    def network_channels(cls, config: Configuration) -> int:
        return 1 + config.method.n_rays

    @classmethod
    def threshold_grid(cls, config: Configuration) -> dict[str, list[float]]:
        return {"prob_threshold": [0.3, 0.4, 0.5, 0.6, 0.7],
                "nms_threshold": [0.3, 0.4, 0.5]}

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: StarConvexConfig = config.method
        net = UNet(2, in_channels, out_channels, depth=m.depth, base_channels=m.base_channels,
                   kernel_size=3, batch_norm=m.batch_norm, residual=False)
        # Distances start at a few pixels rather than at 0, the probability near 0.1.
        nn.init.constant_(net.head.bias, 3.0)
        nn.init.constant_(net.head.bias[:1], -2.0)
        return net

    def make_targets(self, labels: np.ndarray) -> np.ndarray:
        n_rays = self.config.method.n_rays
        prob = np.stack([normalized_edt(lab) for lab in labels])[:, None]
        dist = star_distances(labels, n_rays, max_steps=max(labels.shape[1:]))
        return np.concatenate([prob, dist], axis=1).astype(np.float32)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prediction, target = prediction.float(), target.float()
        prob_t = target[:, :1]
        bce = nn.functional.binary_cross_entropy_with_logits(prediction[:, :1], prob_t)
        # Distances matter where objects are, most near their centres (weight = target
        # probability), as in StarDist.
        err = torch.abs(prediction[:, 1:] - target[:, 1:]).mean(dim=1, keepdim=True)
        weight = prob_t
        dist = (weight * err).sum() / weight.sum().clamp_min(1.0)
        return bce + self.config.method.distance_weight * dist

    def point_estimate(self, output: torch.Tensor) -> torch.Tensor:
        output = output.float()
        return torch.cat([torch.sigmoid(output[:, :1]), output[:, 1:]], dim=1)

    @classmethod
    def extract(cls, config: Configuration, dense: np.ndarray) -> Objects:
        m: StarConvexConfig = config.method
        objects = polygons_from_maps(dense[0], dense[1:], prob_threshold=m.prob_threshold,
                                     nms_threshold=m.nms_threshold)
        return drop_small(objects, m.min_size)
