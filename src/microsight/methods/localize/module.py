"""Learned SMLM localization: per-pixel detection, sub-pixel offsets and uncertainties.

The network sees a frame and ``context`` neighbours on each side (photons
over a fixed scale). Per pixel it predicts the logit of "an emitter is
here", the offsets of that emitter from the pixel centre (x, y, and z for
the astigmatic PSF) and its photons, each as a Gaussian (mean and log
standard deviation, trained by negative log-likelihood where an emitter
is), and the background. Detections are pixels whose probability is a
local maximum with enough probability mass around it (an emitter on a
pixel border splits its probability between two pixels), or that are
confident on their own. Inference batches whole frames, so a 64 x 64
movie streams at thousands of frames per second on a GPU and hundreds on
a laptop CPU.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microsight.config import Configuration
from microsight.data.pairs import TrainingSet
from microsight.data.smlm_render import render_gaussian
from microsight.engine.bundle import Model
from microsight.engine.evaluate import Evaluation
from microsight.engine.module import MicrosightModule
from microsight.engine.predict import TileSettings
from microsight.engine.sampling import PatchSampler
from microsight.errors import MicrosightError
from microsight.families.smlm.module import (
    check_pixel_size,
    classical_table,
    identity_grids,
    is_simulated,
    make_training_set,
    movie_frames,
    pad_to,
    read_eval_pair,
    reconstruction_figure,
    scaled_input,
    smlm_evaluation,
    warn_if_frames_independent,
)
from microsight.io import Image
from microsight.io.localizations import concat_tables, make_table, write_localizations
from microsight.methods.localize.config import LocalizeConfig
from microsight.methods.localize.refine import refine
from microsight.nn import UNet

# Target channels: probability, dx, dy, photons, background, (dz).
P, DX, DY, N, BG, DZ = range(6)


def _n_params(m: LocalizeConfig) -> int:
    """Gaussian outputs: dx, dy, photons (and dz in 3D)."""
    return 4 if m.simulation.is_3d else 3


def _z_scale(m: LocalizeConfig) -> float:
    return max(abs(m.simulation.z_range[0]), abs(m.simulation.z_range[1]), 1.0)


def context_stack(frames: np.ndarray, context: int) -> np.ndarray:
    """``(T, 2c+1, Y, X)``: every frame with ``c`` neighbours each side (edges repeated)."""
    t = len(frames)
    idx = np.clip(np.arange(t)[:, None] + np.arange(-context, context + 1)[None], 0, t - 1)
    return frames[idx]


def pixel_targets(truth: np.ndarray, n_frames: int, shape: tuple[int, int],
                  m: LocalizeConfig) -> np.ndarray:
    """Target maps ``(T, C, Y, X)``: probability, offsets, photons, background (, dz).

    An emitter belongs to the pixel holding it; when two share a pixel the
    brighter wins (the fainter one is a miss the network cannot avoid).
    """
    h, w = shape
    px = m.simulation.pixel_size
    channels = 6 if m.simulation.is_3d else 5
    out = np.zeros((n_frames, channels, h, w), np.float32)
    bg = np.nan_to_num(truth["background"]) if len(truth) else np.zeros(0)
    frame_bg = np.zeros(n_frames)
    if len(truth):
        counts = np.bincount(truth["frame"], minlength=n_frames)[:n_frames]
        sums = np.bincount(truth["frame"], weights=bg, minlength=n_frames)[:n_frames]
        frame_bg = np.where(counts > 0, sums / np.maximum(counts, 1), m.simulation.background)
    else:
        frame_bg[:] = m.simulation.background
    out[:, BG] = (frame_bg / m.photon_scale)[:, None, None]
    cx, cy = truth["x"] / px - 0.5, truth["y"] / px - 0.5
    j, i = np.rint(cx).astype(np.int64), np.rint(cy).astype(np.int64)
    ok = (i >= 0) & (i < h) & (j >= 0) & (j < w) & (truth["frame"] < n_frames)
    order = np.argsort(truth["photons"][ok], kind="stable")
    f, i, j = truth["frame"][ok][order], i[ok][order], j[ok][order]
    sel = truth[ok][order]
    out[f, P, i, j] = 1
    out[f, DX, i, j] = (cx[ok][order] - j).astype(np.float32)
    out[f, DY, i, j] = (cy[ok][order] - i).astype(np.float32)
    out[f, N, i, j] = sel["photons"] / m.simulation.photons
    if m.simulation.is_3d:
        out[f, DZ, i, j] = sel["z"] / _z_scale(m)
    return out


def detect(output: torch.Tensor, m: LocalizeConfig) -> torch.Tensor:
    """Boolean detections ``(B, Y, X)`` from raw outputs ``(B, C, Y, X)``."""
    return detect_at(output, m.threshold, m.single_threshold)


def detect_at(output: torch.Tensor, threshold: float, single_threshold: float
              ) -> torch.Tensor:
    """Detections at the given ``threshold`` and ``single_threshold`` (see :func:`detect`)."""
    p = torch.sigmoid(output[:, 0])
    h, w = p.shape[-2:]
    # A tiny position-dependent tie-breaker: two equal neighbours are not both maxima.
    ramp = torch.arange(h * w, device=p.device, dtype=p.dtype).view(h, w) * (1e-7 / (h * w))
    q = (p + ramp)[:, None]
    local_max = q == nn.functional.max_pool2d(q, 3, 1, 1)
    mass = nn.functional.avg_pool2d(p[:, None], 3, 1, 1, count_include_pad=False) * 9
    hit = (local_max & (mass > threshold)) | (p[:, None] > single_threshold)
    return hit[:, 0]


def _chunk_table(out: torch.Tensor, hit: torch.Tensor, photons: np.ndarray, frame0: int,
                 m: LocalizeConfig) -> np.ndarray:
    """Localizations of a chunk's detections ``hit`` from its raw outputs.

    ``photons`` are the chunk's frames in photons (for the maximum-likelihood polish).
    """
    k, px = _n_params(m), m.simulation.pixel_size
    f, i, j = torch.nonzero(hit, as_tuple=True)
    vals = out[f, :, i, j].cpu().numpy()
    f, i, j = f.cpu().numpy(), i.cpu().numpy(), j.cpu().numpy()
    sd = np.exp(np.clip(vals[:, 1 + k:1 + 2 * k], -6, 3))
    cols = dict(
        frame=f + frame0, x=(j + 0.5 + vals[:, 1]) * px, y=(i + 0.5 + vals[:, 2]) * px,
        photons=np.maximum(vals[:, 3], 0) * m.simulation.photons,
        background=vals[:, -1] * m.photon_scale,
        sigma_x=sd[:, 0] * px, sigma_y=sd[:, 1] * px,
        sigma_photons=sd[:, 2] * m.simulation.photons,
        score=1 / (1 + np.exp(-vals[:, 0])))
    if k == 4:
        cols.update(z=vals[:, 4] * _z_scale(m), sigma_z=sd[:, 3] * _z_scale(m))
    elif m.refine and len(f):
        cols = refine(cols, f, i, j, photons, m)
    return make_table(**cols)


class LocalizeModule(MicrosightModule):
    """Compact U-Net from frames (with context) to per-pixel emitter parameters."""

    dihedral_maps = False  # sub-pixel offsets are signed along Y and X
    #: Validation localizes the emitters of the validation tiles (lateral only).
    val_metrics = ("val_jaccard", "val_rmse_lateral")

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: LocalizeConfig = config.method
        k = _n_params(m)
        net = UNet(2, 2 * m.context + 1, 2 * k + 2, depth=m.depth,
                   base_channels=m.base_channels, kernel_size=3, batch_norm=False,
                   residual=False)
        # Start near "no emitter anywhere" (sigmoid(-4) ~ 0.02): stable early training.
        nn.init.constant_(net.head.bias[:1], -4.0)
        return net

    def attach_sampler(self, sampler: PatchSampler) -> None:
        identity_grids(sampler)
        super().attach_sampler(sampler)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        m: LocalizeConfig = self.config.method
        k = _n_params(m)
        out, target = prediction.float(), target.float()
        p = target[:, P]
        bce = nn.functional.binary_cross_entropy_with_logits(out[:, 0], p)
        idx = [DX, DY, N] + ([DZ] if k == 4 else [])
        mu = out[:, 1:1 + k]
        log_sd = out[:, 1 + k:1 + 2 * k].clamp(-6, 3)
        nll = 0.5 * ((target[:, idx] - mu) * torch.exp(-log_sd)) ** 2 + log_sd
        nll = (nll.sum(1) * p).sum() / p.sum().clamp(min=1)
        bg = torch.mean((out[:, -1] - target[:, BG]) ** 2)
        return bce + 0.1 * nll + bg

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._val_tables: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._val_frames = 0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = self.prepare_batch(*batch)
        out = self(x).float()
        n = y.numel()
        self._val["loss"] += float(self.loss(out, y)) * n
        self._val["sq"] += float(torch.sum((self.point_estimate(out) - y.float()) ** 2))
        self._val["n"] += n
        # Every tile is a frame of its own: found and true emitters, in nm.
        m: LocalizeConfig = self.config.method
        y = y.float()
        found = (detect(out, m), out[:, 1:3])
        true = (y[:, P] > 0.5, y[:, [DX, DY]])
        for tables, (mask, offsets) in zip(self._val_tables, (found, true), strict=True):
            f, i, j = torch.nonzero(mask, as_tuple=True)
            d = offsets[f, :, i, j].cpu().numpy()
            tables.append(make_table(
                frame=f.cpu().numpy() + self._val_frames,
                x=(j.cpu().numpy() + 0.5 + d[:, 0]) * m.simulation.pixel_size,
                y=(i.cpu().numpy() + 0.5 + d[:, 1]) * m.simulation.pixel_size))
        self._val_frames += len(x)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self._val_tables[0]:
            return
        from microsight.metrics.smlm import localization_scores

        scores = localization_scores(*(concat_tables(t) for t in self._val_tables),
                                     self.config.method.tolerance)
        self.log("val_jaccard", scores["jaccard"], prog_bar=True)
        if np.isfinite(scores["rmse_lateral"]):
            self.log("val_rmse_lateral", scores["rmse_lateral"], prog_bar=True)

    def point_estimate(self, output: torch.Tensor) -> torch.Tensor:
        # Same channel layout as the target, so validation compares like with like.
        k = _n_params(self.config.method)
        parts = [torch.sigmoid(output[:, :1]), output[:, 1:4], output[:, -1:]]
        if k == 4:
            parts.append(output[:, 4:5])
        return torch.cat(parts, 1)

    @classmethod
    def export_notes(cls, model: Model) -> dict[str, Any]:
        """Context channels, the point-estimate maps and how localizations are found."""
        m: LocalizeConfig = model.config.method
        c, px = m.context, m.simulation.pixel_size
        outputs = ["probability", "dx", "dy", "photons", "background"]
        outputs += ["dz"] if _n_params(m) == 4 else []
        around = f" and its {c} neighbours on each side" if c else ""
        z_note = f"; dz over {_z_scale(m):g} nm" if _n_params(m) == 4 else ""
        refined = " and refines positions with a local fit" if (
            m.refine and _n_params(m) == 3) else ""
        steps = [
            f"Input: {2 * c + 1} channel(s), the frame{around} (the first and last frames "
            "repeated at the ends of the movie), in photons over the photon scale (the "
            "package's scale_linear pre-processing).",
            "Output maps: emitter probability per pixel; dx, dy: emitter position from the "
            "pixel centre, in pixels; photons over the mean photon count "
            f"({m.simulation.photons:g}); background over the photon scale "
            f"({m.photon_scale:g}){z_note}.",
            "Localizations: pixels whose probability is a 3x3 local maximum with a 3x3 "
            f"probability sum above {m.threshold:g}, or whose probability exceeds "
            f"{m.single_threshold:g}; x = (column + 0.5 + dx) * {px:g} nm, "
            f"y = (row + 0.5 + dy) * {px:g} nm. microsight's table also gives per-emitter "
            f"uncertainties (from outputs the package leaves out){refined}."]
        inputs = [f"frame_before_{c - k}" for k in range(c)] + ["frame"] + [
            f"frame_after_{k + 1}" for k in range(c)]
        return {"inputs": inputs, "outputs": outputs, "steps": steps}

    # --- training data -------------------------------------------------------------
    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path | None,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Simulated (or given) movies as context stacks with per-pixel targets."""
        m: LocalizeConfig = config.method
        if not is_simulated(input_path) and target_path is None:
            raise MicrosightError(
                "method localize learns from a movie and its ground-truth table: pass "
                "--target table.csv, or --input simulate to train on simulated movies")

        def build(movie: np.ndarray, truth: np.ndarray
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
            x = context_stack(scaled_input(movie, m), m.context)
            y = pixel_targets(truth, len(movie), movie.shape[1:], m)
            return list(x), list(y)

        return make_training_set(m, config.training.seed, input_path, target_path, axes, build)

    @classmethod
    def after_training(cls, model: Model, data: TrainingSet, out: Path, *,
                       progress: bool = False) -> Model:
        """Choose the detection threshold on the simulated validation movie."""
        from microsight.families.smlm.tuning import tune_after_training

        return tune_after_training(model, out, progress=progress)

    # --- prediction ----------------------------------------------------------------
    @classmethod
    def localize_movie(cls, model: Model, frames_adu: np.ndarray, *, first_frame: int = 0,
                       progress: bool = False) -> np.ndarray:
        """Localization table of a ``(T, Y, X)`` movie in ADU (frames batched)."""
        m: LocalizeConfig = model.config.method
        return cls.localize_at(model, frames_adu, [(m.threshold, m.single_threshold)],
                               first_frame=first_frame, progress=progress)[0]

    @classmethod
    def localize_at(cls, model: Model, frames_adu: np.ndarray,
                    thresholds: list[tuple[float, float]], *, first_frame: int = 0,
                    progress: bool = False) -> list[np.ndarray]:
        """Localization tables of a movie at several detection settings, one network pass.

        Parameters
        ----------
        model : Model
            A localize model.
        frames_adu : numpy.ndarray
            Movie ``(T, Y, X)`` in ADU.
        thresholds : list of (float, float)
            ``(threshold, single_threshold)`` pairs (see :class:`LocalizeConfig`).
        first_frame : int
            Frame number of ``frames_adu[0]``.
        progress : bool
            Show a progress bar.

        Returns
        -------
        list of numpy.ndarray
            One localization table per pair.
        """
        m: LocalizeConfig = model.config.method
        module = model.module
        device = next(module.parameters()).device
        net = module.network.to(memory_format=torch.channels_last)
        x = scaled_input(frames_adu, m)
        tables: list[list[np.ndarray]] = [[] for _ in thresholds]
        steps = range(0, len(x), m.frame_batch)
        if progress:
            from rich.progress import track

            steps = track(steps, description="localizing")
        with torch.inference_mode():
            for lo in steps:
                idx = np.clip(np.arange(lo - m.context, min(lo + m.frame_batch, len(x))
                                        + m.context), 0, len(x) - 1)
                chunk = torch.from_numpy(x[idx]).to(device)
                n = min(m.frame_batch, len(x) - lo)
                stack = chunk.unfold(0, 2 * m.context + 1, 1).permute(0, 3, 1, 2)[:n]
                batch, h, w = pad_to(stack.contiguous(memory_format=torch.channels_last),
                                     module.divisor)
                out = net(batch)[..., :h, :w].float()
                photons = x[lo:lo + n] * np.float32(m.photon_scale)
                for found, (t, single) in zip(tables, thresholds, strict=True):
                    found.append(_chunk_table(out, detect_at(out, t, single), photons,
                                              lo + first_frame, m))
        return [concat_tables(found) for found in tables]

    @classmethod
    def choose_threshold(cls, model: Model, movie_adu: np.ndarray, truth: np.ndarray,
                         candidates: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
                         ) -> dict[str, float]:
        """Set ``method.threshold`` to the candidate with the best Jaccard on a movie.

        Meant for validation movies (e.g. freshly simulated ones), never test data.
        ``single_threshold`` follows at ``threshold + 0.1``.

        Returns
        -------
        dict
            Jaccard index per candidate threshold.
        """
        from microsight.metrics.smlm import localization_scores

        m: LocalizeConfig = model.config.method
        tables = cls.localize_at(model, movie_adu, [(t, min(t + 0.1, 0.95)) for t in candidates])
        scores = {t: localization_scores(table, truth, m.tolerance)["jaccard"]
                  for t, table in zip(candidates, tables, strict=True)}
        best = max(scores, key=scores.get)
        m.threshold, m.single_threshold = best, min(best + 0.1, 0.95)
        return scores

    @classmethod
    def predict_item(cls, model: Model, item: np.ndarray, settings: TileSettings | None = None
                     ) -> np.ndarray:
        """Detection probability map ``(1, Y, X)`` of one frame ``(1, Y, X)`` in ADU.

        The frame is its own context. Used where a per-pixel image is wanted;
        :meth:`predict_image` gives the localization table.
        """
        m: LocalizeConfig = model.config.method
        module = model.module
        x = context_stack(scaled_input(np.asarray(item)[:1], m), m.context)
        batch, h, w = pad_to(torch.from_numpy(x), module.divisor)
        with torch.inference_mode():
            out = module.network(batch)[..., :h, :w]
        return torch.sigmoid(out[:, :1]).numpy()[0]

    @classmethod
    def predict_image(cls, model: Model, image: Image, out: str | Path | None = None, *,
                      settings: TileSettings | None = None, progress: bool = False
                      ) -> np.ndarray | Path:
        """Localize every frame of a movie (``TYX``; ``YX`` is one frame).

        Returns
        -------
        numpy.ndarray or Path
            The localization table (``io.localizations.LOC_DTYPE``, nm), or the CSV
            written to ``out`` (columns per ``method.table_format``).
        """
        if out is not None and Path(out).suffix.lower() != ".csv":
            raise MicrosightError(
                f"localize writes a localization table: give an output ending in .csv, not "
                f"{Path(out).name}")
        check_pixel_size(image, model.config.method)
        frames = movie_frames(image)
        warn_if_frames_independent(frames, model.config.method,
                                   image.path.name if image.path else "the movie")
        table = cls.localize_movie(model, frames, progress=progress)
        if out is None:
            return table
        return write_localizations(out, table, format=model.config.method.table_format)

    # --- evaluation ----------------------------------------------------------------
    @classmethod
    def evaluate_model(cls, model: Model, input: str | Path, target: str | Path, *,
                       axes: str | None = None, report: str | Path | None = None,
                       settings: TileSettings | None = None, tolerance: float | None = None
                       ) -> Evaluation:
        """Challenge metrics of the network and of the classical fitter on a test movie.

        ``tolerance`` (nm) replaces the model's matching tolerance.
        """
        m: LocalizeConfig = model.config.method
        movie, truth = read_eval_pair(input, target, axes)
        warn_if_frames_independent(movie, m, Path(input).name)
        timings, tables = {}, {}
        for source, fn in (("network", lambda: cls.localize_movie(model, movie)),
                           ("classical MLE fit", lambda: classical_table(movie, m))):
            start = time.perf_counter()
            tables[source] = fn()
            timings[source] = time.perf_counter() - start
        size = (movie.shape[1] * m.simulation.pixel_size, movie.shape[2] * m.simulation.pixel_size)
        renders = {"ground truth": render_gaussian(truth, size, 10.0, sigma=15.0)}
        renders.update({s: render_gaussian(t, size, 10.0, sigma=15.0) for s, t in tables.items()})
        figure = ("Renderings (10 nm pixels)", reconstruction_figure(renders, "ground truth"),
                  "Gaussian renderings (sd 15 nm) of the truth, the network and the baseline, "
                  "on one display range (the ground truth's 99.5th percentile).")
        return smlm_evaluation(model, tables, truth, timings, Path(input).name, report,
                               [figure], tolerance=tolerance)
