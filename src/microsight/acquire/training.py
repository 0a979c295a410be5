"""Train the restoration model of the dose scenario through :func:`microsight.api.train`.

Pairs come from the simulated microscope itself: fields of the calibration half of
the specimen imaged at powers spread over the agent's ladder (inputs) and their
noise-free ground truth (targets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from microsight.acquire.microscope import SimulatedMicroscope
from microsight.acquire.specimen import SampleSpecimen


def simulate_pairs(folder: Path, *, n_fields: int, size: int, powers: tuple[float, float],
                   per_field: int, seed: int, photons: float) -> tuple[Path, Path]:
    """Write low/ and high/ TIFF pairs of the calibration half; return both folders."""
    import tifffile

    low, high = folder / "low", folder / "high"
    low.mkdir(parents=True, exist_ok=True)
    high.mkdir(parents=True, exist_ok=True)
    specimen = SampleSpecimen(n_fields, size=size, seed=seed, half="top", bleach_dose=1e9)
    scope = SimulatedMicroscope(specimen, photons=photons, seed=seed)
    rng = np.random.default_rng(seed)
    for f in range(n_fields):
        scope.field = f
        truth = specimen.ground_truth(f, 0.0)
        for k in range(per_field):
            # Log-uniform powers: as many pairs per octave of light.
            scope.power = float(np.exp(rng.uniform(np.log(powers[0]), np.log(powers[1]))))
            estimate = scope.estimate(scope.snap(), scope.dose_map())
            name = f"f{f:03d}_{k}.tif"
            tifffile.imwrite(low / name, estimate)
            tifffile.imwrite(high / name, truth)
    return low, high


def restoration_model(folder: str | Path, *, size: int, powers: tuple[float, float],
                      photons: float, n_fields: int = 24, per_field: int = 3,
                      steps: int = 600, tiny: bool = False, seed: int = 1000) -> Any:
    """Train (or reuse) a CARE model on simulated pairs.

    The agent's uncertainty is the spread over the 8 flips/rotations
    (``uncertainty="tta"``): in this setting a probabilistic CARE trained for the same
    few hundred steps restored far less (about 0.5 dB over the raw frame at the lowest
    power, against 7 dB for the mean-squared-error CARE), so the plain model is used.

    Parameters
    ----------
    folder : str or Path
        Cache folder: ``pairs/`` and the bundle ``model/``. A bundle trained with the
        same settings is reused.
    size : int
        Field edge.
    powers : tuple of float
        Lowest and highest power of the pairs.
    photons : float
        Microscope brightness (photons per unit dose at density 1).
    n_fields, per_field : int
        Training fields and noisy frames per field.
    steps : int
        Optimizer steps.
    tiny : bool
        A very small network (for tests).
    seed : int
        Seed of the pairs and the training.

    Returns
    -------
    Model
    """
    from microsight import api

    folder = Path(folder)
    stamp = {"size": size, "powers": list(powers), "photons": photons, "n_fields": n_fields,
             "per_field": per_field, "steps": steps, "tiny": tiny, "seed": seed}
    bundle = folder / "model"
    stamp_file = folder / "settings.json"
    if (bundle / "model.json").is_file() and stamp_file.is_file() and \
            json.loads(stamp_file.read_text()) == stamp:
        return api.load_model(bundle)
    low, high = simulate_pairs(folder / "pairs", n_fields=n_fields, size=size, powers=powers,
                               per_field=per_field, seed=seed, photons=photons)
    network = {"depth": 1, "base_channels": 4} if tiny else {"depth": 2, "base_channels": 16}
    patch = 16 if tiny else 48
    config = {"name": "acquire-care",
              "method": {"method": "care", **network},
              "data": {"patch_size": [patch, patch], "batch_size": 4 if tiny else 16},
              "training": {"seed": seed, "val_tile": 32 if tiny else 96}}
    model = api.train("care", low, high, out=bundle, config=config, steps=steps,
                      progress=False)
    stamp_file.write_text(json.dumps(stamp))
    return model
