"""Fixed-size crops for classification and embedding (numpy only).

- :func:`extract_crop` / :func:`object_crops`: square crops centred on points or on the
  objects of a label image, padded at image borders;
- :func:`load_class_folder`: a folder with one subfolder per class, one image per sample;
- :func:`stratified_split`, :func:`class_counts`: splits and class statistics;
- :func:`handcrafted_features`: intensity/shape statistics per channel (classical baseline);
- :class:`CropSet`: the :class:`~microsight.data.pairs.TrainingSet` handed to the training
  loop, with one crop per item and a constant class map as the item's target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from microsight.data.layout import item_indices, read_item
from microsight.data.pairs import TrainingSet
from microsight.errors import MicrosightError
from microsight.io import list_images, read_image
from microsight.io.image import image_format


@dataclass
class CropSet(TrainingSet):
    """Training crops ``(C, S, S)``; targets are constant maps holding the class index."""

    n_classes: int = 2

    @property
    def out_channels(self) -> int:  # the network predicts one logit per class
        return int(self.n_classes)


def pad_value(image: np.ndarray) -> np.ndarray:
    """Per-channel value used outside the image: the channel's median (background)."""
    flat = image.reshape(image.shape[0], -1)
    return np.median(flat, axis=1).astype(np.float32)


def extract_crop(image: np.ndarray, centre: tuple[float, float], size: int,
                 fill: np.ndarray | float | None = None) -> np.ndarray:
    """Square ``size`` x ``size`` crop of a channels-first ``(C, Y, X)`` image.

    The crop's centre pixel is ``round(centre)`` (for even sizes, the pixel just
    below and right of the geometric centre). Parts outside the image are filled
    with ``fill`` per channel (default: the channel median).
    """
    if image.ndim != 3:
        raise ValueError(f"expected a (C, Y, X) image, got shape {image.shape}")
    c, h, w = image.shape
    if fill is None:
        fill = pad_value(image)
    out = np.empty((c, size, size), np.float32)
    out[...] = np.asarray(fill, np.float32).reshape(-1, 1, 1)
    y0 = round(float(centre[0])) - size // 2
    x0 = round(float(centre[1])) - size // 2
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + size, h), min(x0 + size, w)
    if ye > ys and xe > xs:
        out[:, ys - y0:ye - y0, xs - x0:xe - x0] = image[:, ys:ye, xs:xe]
    return out


def fit_to_size(item: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop or pad (with the channel median) a ``(C, Y, X)`` item to ``size``."""
    _, h, w = item.shape
    if h == size and w == size:
        return np.asarray(item, np.float32)
    return extract_crop(item, ((h - size) // 2 + size // 2, (w - size) // 2 + size // 2), size)


def object_crops(image: np.ndarray, labels: np.ndarray, size: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops centred on every object of a label image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(C, Y, X)`` image.
    labels : numpy.ndarray
        ``(Y, X)`` integer labels (0 = background).
    size : int
        Crop edge in pixels.

    Returns
    -------
    ids, centroids, crops
        Object ids ``(N,)``, centroids ``(N, 2)`` (y, x) and crops ``(N, C, size, size)``.
    """
    if labels.shape != image.shape[1:]:
        raise MicrosightError(
            f"the label image is {labels.shape} but the image is {image.shape[1:]} (YX); "
            "give labels of the same size")
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if len(ids) == 0:
        return (np.zeros(0, np.int64), np.zeros((0, 2)),
                np.zeros((0, image.shape[0], size, size), np.float32))
    centroids = np.asarray(ndimage.center_of_mass(np.ones_like(labels, np.float32), labels, ids),
                           np.float64).reshape(-1, 2)
    fill = pad_value(image)
    crops = np.stack([extract_crop(image, c, size, fill) for c in centroids])
    return ids.astype(np.int64), centroids, crops


def image_items(path: Path, axes: str | None = None) -> list[np.ndarray]:
    """Channels-first 2D items ``(C, Y, X)`` of one image file (S/T axes give several)."""
    image = read_image(path, axes=axes)
    return [np.asarray(read_item(image.data, image.axes, 2, ix), np.float32)
            for ix in item_indices(image.axes, image.shape, 2, path.name)]


def class_folders(path: str | Path) -> list[Path]:
    """Subfolders of ``path`` (one per class, sorted by name)."""
    path = Path(path)
    if not path.is_dir():
        raise MicrosightError(f"{path}: not a folder; give a folder with one subfolder per class")
    subs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and image_format(p) != "zarr")
    if not subs:
        raise MicrosightError(
            f"{path}: no class subfolders; put the images of each class in a subfolder named "
            "after the class")
    return subs


def load_class_folder(path: str | Path, size: int, *, axes: str | None = None,
                      classes: list[str] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Read a folder with one subfolder per class into raw crops.

    Parameters
    ----------
    path : str or Path
        Folder of class subfolders holding images (TIFF/PNG; axes CYX or YX).
    size : int
        Every sample is centre-cropped or padded to ``size`` x ``size``.
    axes : str, optional
        Axes of the files when their metadata do not say.
    classes : list of str, optional
        Known class names (prediction/evaluation): subfolders must be among them.

    Returns
    -------
    crops, labels, class_names, sample_names
        ``(N, C, size, size)`` float32 raw intensities, ``(N,)`` class indices.
    """
    subs = class_folders(path)
    names = classes if classes is not None else [s.name for s in subs]
    unknown = [s.name for s in subs if s.name not in names]
    if unknown:
        raise MicrosightError(
            f"{path}: class folder(s) {', '.join(unknown)} are not classes of this model "
            f"({', '.join(names)})")
    crops, labels, samples = [], [], []
    for sub in subs:
        for file in list_images(sub):
            for k, item in enumerate(image_items(file, axes)):
                if not np.isfinite(item).all():
                    raise MicrosightError(f"{file.name} contains NaN or infinite values")
                crops.append(fit_to_size(item, size))
                labels.append(names.index(sub.name))
                samples.append(f"{sub.name}/{file.name}" + (f"[{k}]" if k else ""))
    channels = {c.shape[0] for c in crops}
    if len(channels) > 1:
        raise MicrosightError(
            f"{path}: samples have different channel counts {sorted(channels)}; every image "
            "needs the same channels")
    return np.stack(crops), np.asarray(labels, np.int64), list(names), samples


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Samples per class."""
    return np.bincount(np.asarray(labels, np.int64), minlength=n_classes)


def balanced_weights(labels: np.ndarray, n_classes: int, power: float = 1.0) -> np.ndarray:
    """Per-sample draw weights so that every class is drawn equally often (``power`` 1).

    ``power`` between 0 (natural frequencies) and 1 (fully balanced) interpolates.
    """
    counts = class_counts(labels, n_classes).astype(np.float64)
    per_class = np.where(counts > 0, counts, 1.0) ** -power
    w = per_class[np.asarray(labels, np.int64)]
    return w / w.sum()


def stratified_split(labels: np.ndarray, fractions: dict[str, float], seed: int = 0
                     ) -> np.ndarray:
    """Assign each sample to a named split, class by class, with a fixed seed.

    Every class with at least as many samples as splits gets at least one sample in
    each split; the remainder of the fractions goes to the first split.

    Returns
    -------
    numpy.ndarray
        Split name per sample (``dtype=object``).
    """
    rng = np.random.default_rng(seed)
    names = list(fractions)
    out = np.empty(len(labels), object)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n = len(idx)
        sizes = {k: round(n * f) for k, f in fractions.items() if k != names[0]}
        if n >= len(names):
            sizes = {k: max(1, v) for k, v in sizes.items()}
        start = 0
        for k, v in sizes.items():
            v = min(v, n - start - (1 if n > len(sizes) else 0))
            out[idx[start:start + v]] = k
            start += v
        out[idx[start:]] = names[0]
    return out


def handcrafted_features(crops: np.ndarray) -> np.ndarray:
    """Intensity and shape statistics per channel of ``(N, C, S, S)`` crops.

    Per channel: mean, std, min, max, 5/25/50/75/95th percentiles, mean gradient
    magnitude, centre-to-surround contrast, and the area, perimeter, eccentricity and
    mean intensity of the object found by thresholding the channel's deviation from
    its border median at half its maximum.
    """
    n, c, s, _ = crops.shape
    yy, xx = np.mgrid[:s, :s]
    centre = ((yy - s / 2) ** 2 + (xx - s / 2) ** 2) < (s / 4) ** 2
    border = np.ones((s, s), bool)
    border[2:-2, 2:-2] = False
    feats = np.zeros((n, c, 15), np.float32)
    for i in range(n):
        for j in range(c):
            x = crops[i, j].astype(np.float64)
            p = np.percentile(x, [5, 25, 50, 75, 95])
            gy, gx = np.gradient(x)
            dev = np.abs(x - np.median(x[border]))
            mask = dev > 0.5 * dev.max() if dev.max() > 0 else np.zeros_like(x, bool)
            area = float(mask.sum())
            perim = float((mask & ~ndimage.binary_erosion(mask)).sum())
            ecc = 0.0
            if area > 2:
                cov = np.cov(np.stack([yy[mask], xx[mask]]).astype(np.float64))
                ev = np.sort(np.linalg.eigvalsh(cov))
                ecc = float(np.sqrt(max(0.0, 1 - ev[0] / ev[1]))) if ev[1] > 0 else 0.0
            feats[i, j] = [x.mean(), x.std(), x.min(), x.max(), *p,
                           np.hypot(gy, gx).mean(), x[centre].mean() - x[~centre].mean(),
                           area, perim, ecc, x[mask].mean() if area else 0.0]
    return feats.reshape(n, -1)
