"""What a prediction wrote: every file, with what it holds, in words.

A segmentation writes its label image and, beside it, probabilities, a table
of objects, maybe polygons and the input check; a person should not have to
guess which file is which. :func:`written_files` names them after the fact,
from the naming rules of the writers (only files written by this run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from microsight.config import MethodSpec
from microsight.engine.ood import sidecar_path
from microsight.io.image import image_stem, image_suffix

#: The main output of a method, by its first declared output kind: what it holds, and
#: what a row of a table output is.
MAIN = {
    "image": ("predicted image", None),
    "labels": ("label image", None),
    "points": ("table of points: y, x, class, score", "point"),
    "localizations": ("table of localizations", "localization"),
    "classes": ("predicted class and its probabilities", None),
    "embedding": ("feature vector (embedding)", None),
}
#: Side files next to the main output: name after the stem -> what they hold.
SIDE = {
    "_prob{ext}": "probability map",
    "_objects.csv": "table of objects: label, area, score, position, box",
    "_classes.csv": "pixels per class",
    "_polygons.geojson": "object outlines as polygons (GeoJSON: QGIS, QuPath)",
    ".uncertainty{ext}": "per-pixel uncertainty map",
}


@dataclass(frozen=True)
class WrittenFile:
    """One file a prediction wrote, and what it holds."""

    path: Path
    what: str


def written_files(spec: MethodSpec, out: str | Path, *, since: float,
                  rois: str | Path | None = None, uncertainty: str | Path | None = None
                  ) -> list[WrittenFile]:
    """The files a prediction into ``out`` wrote, main output first.

    Parameters
    ----------
    spec : MethodSpec
        The model's method (its outputs name the main file).
    out : str or Path
        The main output.
    since : float
        When the prediction started (``time.time()``): older files are not its own.
    rois : str or Path, optional
        The ROI set asked for.
    uncertainty : str or Path, optional
        Where an uncertainty map was asked for.

    Returns
    -------
    list of WrittenFile
    """
    out = Path(out)
    stem, ext, folder = image_stem(out), image_suffix(out), out.parent
    found = [WrittenFile(out, _main(spec, out))]
    for pattern, what in SIDE.items():
        path = folder / f"{stem}{pattern.format(ext=ext)}"
        if pattern == "_objects.csv" and path.is_file():
            what = f"{what} ({_plural(_rows(path), 'object')})"
        found.append(WrittenFile(path, what))
    if uncertainty is not None:
        found.append(WrittenFile(Path(uncertainty), "per-pixel uncertainty map"))
    if rois is not None:
        found.append(WrittenFile(Path(rois), "object outlines as an ImageJ/Fiji ROI set"))
    found.append(WrittenFile(sidecar_path(out), "input check against the training data"))
    seen: set[Path] = set()
    fresh = []
    for item in found:
        if item.path in seen or not _fresh(item.path, since):
            continue
        seen.add(item.path)
        fresh.append(item)
    return fresh


def _main(spec: MethodSpec, out: Path) -> str:
    kind = spec.outputs[0]
    what, noun = MAIN.get(kind, (f"{kind} output", None))
    if kind == "labels":
        objects = out.parent / f"{image_stem(out)}_objects.csv"
        if objects.is_file():
            return f"{what} ({_plural(_rows(objects), 'object')})"
    if noun is not None and out.suffix.lower() == ".csv" and out.is_file():
        return f"{what} ({_plural(_rows(out), noun)})"
    return what


def _fresh(path: Path, since: float) -> bool:
    """Whether ``path`` exists and was written by this run (a second of clock slack)."""
    try:
        return path.stat().st_mtime >= since - 1.0
    except OSError:
        return False


def _rows(path: Path) -> int:
    """Data rows of a CSV file (lines after the header)."""
    with open(path, "rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    return max(lines - 1, 0)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
