"""Sample data shipped with the package, and noise models to degrade it."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import tifffile


def sample_nuclei() -> np.ndarray:
    """A 512 x 512 fluorescence image of nuclei (DSB2018, CC0; see sample_files/PROVENANCE.md).

    Returns
    -------
    numpy.ndarray
        uint8 image, axes ``YX``.
    """
    with files("microsight.data").joinpath("sample_files", "nuclei.tif").open("rb") as fh:
        return tifffile.imread(fh)


def sample_nuclei_annotated() -> tuple[np.ndarray, np.ndarray]:
    """A 256 x 256 fluorescence image of nuclei with its 49 annotated nuclei.

    DSB2018 (CC0), a test image of the benchmark split; see sample_files/PROVENANCE.md.

    Returns
    -------
    image, labels : numpy.ndarray
        uint8 image and uint16 instance label image, axes ``YX``.
    """
    folder = files("microsight.data").joinpath("sample_files")
    with folder.joinpath("nuclei_annotated.tif").open("rb") as fh:
        image = tifffile.imread(fh)
    with folder.joinpath("nuclei_annotated_labels.tif").open("rb") as fh:
        labels = tifffile.imread(fh)
    return image, labels


def sample_nuclei_he_annotated() -> tuple[np.ndarray, np.ndarray]:
    """A 256 x 320 colour (H&E-like) image of nuclei with its 70 annotated nuclei.

    DSB2018 (CC0), a test image of the bright-background benchmark split; see
    sample_files/PROVENANCE.md.

    Returns
    -------
    image, labels : numpy.ndarray
        uint8 RGB image (axes ``YXC``) and uint16 instance label image (``YX``).
    """
    folder = files("microsight.data").joinpath("sample_files")
    with folder.joinpath("nuclei_he_annotated.tif").open("rb") as fh:
        image = tifffile.imread(fh)
    with folder.joinpath("nuclei_he_annotated_labels.tif").open("rb") as fh:
        labels = tifffile.imread(fh)
    return image, labels


def poisson_gaussian(
    clean: np.ndarray, *, peak_photons: float = 10.0, read_noise: float = 2.0, seed: int = 0
) -> np.ndarray:
    """Simulate a low-light acquisition of ``clean``: shot noise plus camera read noise.

    Parameters
    ----------
    clean : numpy.ndarray
        Noise-free image (any scale).
    peak_photons : float
        Expected photons at the brightest pixel; lower is noisier.
    read_noise : float
        Standard deviation of the Gaussian read noise, in photons.
    seed : int
        Random seed.

    Returns
    -------
    numpy.ndarray
        float32 noisy image in the intensity scale of ``clean``.
    """
    rng = np.random.default_rng(seed)
    clean = np.asarray(clean, np.float32)
    scale = peak_photons / max(float(clean.max()), 1e-12)
    photons = rng.poisson(clean * scale).astype(np.float32)
    photons += rng.normal(0.0, read_noise, clean.shape).astype(np.float32)
    return photons / scale
