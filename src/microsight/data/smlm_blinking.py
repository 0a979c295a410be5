"""Do emitters persist across consecutive frames of an SMLM movie?

Localizers that look at neighbouring frames (``context``) are trained on
blinking movies in which an emitter stays on for a few frames. Some data
are frame-independent (every frame shows new emitters: very short on times,
long exposures between switching, shuffled or subsampled frames); there the
neighbours carry no information and the network is misled by them.

The test detects spots in sampled pairs of consecutive frames and counts
how often a spot reappears at the same place in the next frame, against
the same count for pairs of frames far apart (chance: dense or static
structures also give coincidences). The excess over chance, scaled to
``[0, 1]``, is the persistence: about ``on / (on + 1)`` for a mean on time
of ``on`` frames, 0 for independent frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microsight.data.smlm_fit import find_spots

#: Pairs of consecutive frames sampled from a movie, and the largest frame side looked at.
PAIRS = 100
CROP = 256
#: A spot reappears when the next frame has a spot within this distance (pixels).
RADIUS = 1.5
#: Fewer spots than this give no verdict.
MIN_SPOTS = 50
#: Below this persistence the frames look independent (an on time under ~0.2 frames).
INDEPENDENT = 0.15


@dataclass
class Persistence:
    """How often spots reappear in the next frame, and by chance, in a movie."""

    next_frame: float
    chance: float
    spots: int

    @property
    def persistence(self) -> float:
        """Excess of reappearance over chance, as a fraction of what is left to chance."""
        return (self.next_frame - self.chance) / max(1.0 - self.chance, 1e-9)

    @property
    def independent(self) -> bool:
        """Whether there are enough spots and they look frame-independent."""
        return self.spots >= MIN_SPOTS and self.persistence < INDEPENDENT


def _reappearing(first: np.ndarray, second: np.ndarray, pairs: list[tuple[int, int]]
                 ) -> tuple[int, int]:
    """Spots of ``first`` frames with a spot of the paired ``second`` frame nearby."""
    from scipy.spatial import cKDTree

    hits = total = 0
    for a, b in pairs:
        here, there = first[first[:, 0] == a, 1:], second[second[:, 0] == b, 1:]
        total += len(here)
        if len(here) and len(there):
            dist, _ = cKDTree(there).query(here, distance_upper_bound=RADIUS)
            hits += int(np.isfinite(dist).sum())
    return hits, total


def frame_persistence(frames: np.ndarray, sigma: float, *, threshold: float = 5.0
                      ) -> Persistence | None:
    """Measure whether emitters persist across consecutive frames of a movie.

    Parameters
    ----------
    frames : numpy.ndarray
        Movie ``(T, Y, X)`` (photons or ADU: detection is relative to the noise).
    sigma : float
        PSF standard deviation (pixels).
    threshold : float
        Spot detection threshold (noise units), strict to keep noise out.

    Returns
    -------
    Persistence or None
        None for movies of fewer than 4 frames.
    """
    t = len(frames)
    if t < 4:
        return None
    starts = np.unique(np.linspace(0, t - 2, min(PAIRS, t - 1)).round().astype(int))
    crop = tuple(slice(max(0, (n - CROP) // 2), max(0, (n - CROP) // 2) + CROP)
                 for n in frames.shape[1:])
    first = find_spots(np.asarray(frames[starts][(slice(None), *crop)], np.float32), sigma,
                       threshold)
    second = find_spots(np.asarray(frames[starts + 1][(slice(None), *crop)], np.float32),
                        sigma, threshold)
    k = len(starts)
    # Chance: each first frame against the second frame of a pair half the sample away.
    shift = max(k // 2, 1)
    hits, total = _reappearing(first, second, [(i, i) for i in range(k)])
    by_chance, chance_total = _reappearing(first, second,
                                           [(i, (i + shift) % k) for i in range(k)])
    return Persistence(next_frame=hits / max(total, 1),
                       chance=by_chance / max(chance_total, 1), spots=int(total))
