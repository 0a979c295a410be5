"""Deep-STORM: every frame to a ``factor`` times finer image of emitter spikes.

Following Nehme et al. (2018), the target of a frame is an image on the
fine grid with a spike (value ``spike``) at every emitter, and the loss is
the mean squared difference of the prediction and the target after both are
blurred by a small Gaussian (plus an optional L1 sparsity term). Unlike the
original, which upsamples the frame first and runs the network on the fine
grid, the U-Net here runs on the camera grid and predicts ``factor^2``
sub-pixel channels that are rearranged into the fine grid (pixel shuffle):
the same output at ``factor^2`` times less compute. Targets are stored in
that rearranged form too, so the patch sampler cuts input and target
patches at the same positions.
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
from microsight.data.smlm_render import render_gaussian, render_histogram
from microsight.engine.bundle import Model
from microsight.engine.evaluate import Evaluation, evaluation_report, model_sections
from microsight.engine.module import MicrosightModule
from microsight.engine.predict import TileSettings
from microsight.engine.sampling import PatchSampler
from microsight.errors import MicrosightError
from microsight.families.smlm.module import (
    check_pixel_size,
    classical_table,
    compact_summary,
    identity_grids,
    is_simulated,
    make_training_set,
    movie_frames,
    pad_to,
    read_eval_pair,
    reconstruction_figure,
    scaled_input,
)
from microsight.io import Image, write_image
from microsight.methods.deepstorm.config import DeepStormConfig
from microsight.metrics.smlm import reconstruction_scores
from microsight.nn import UNet

METRICS = ("nmse", "frc_resolution")


def spike_targets(truth: np.ndarray, n_frames: int, shape: tuple[int, int],
                  m: DeepStormConfig) -> np.ndarray:
    """Fine-grid spike images, rearranged to ``(T, factor^2, Y, X)``."""
    f, (h, w) = m.factor, shape
    fine = m.simulation.pixel_size / f
    iy = np.floor(truth["y"] / fine).astype(np.int64)
    ix = np.floor(truth["x"] / fine).astype(np.int64)
    ok = (iy >= 0) & (iy < h * f) & (ix >= 0) & (ix < w * f) & (truth["frame"] < n_frames)
    flat = (truth["frame"][ok] * h * f + iy[ok]) * w * f + ix[ok]
    spikes = np.bincount(flat, minlength=n_frames * h * f * w * f).astype(np.float32) * m.spike
    spikes = spikes.reshape(n_frames, h, f, w, f).transpose(0, 2, 4, 1, 3)
    return spikes.reshape(n_frames, f * f, h, w)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(np.ceil(3 * sigma)))
    ax = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-0.5 * (ax / sigma) ** 2)
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


class DeepStormModule(MicrosightModule):
    """U-Net from a frame to ``factor^2`` sub-pixel channels of the fine spike image."""

    def __init__(self, config: Configuration, in_channels: int = 1, out_channels: int = 1):
        super().__init__(config, in_channels, out_channels)
        self.register_buffer("kernel", _gaussian_kernel(config.method.target_sigma),
                             persistent=False)

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: DeepStormConfig = config.method
        return UNet(2, 1, m.factor ** 2, depth=m.depth, base_channels=m.base_channels,
                    kernel_size=3, batch_norm=False, residual=False)

    def attach_sampler(self, sampler: PatchSampler) -> None:
        identity_grids(sampler)
        super().attach_sampler(sampler)

    def fine(self, x: torch.Tensor) -> torch.Tensor:
        """Rearranged ``(B, f^2, Y, X)`` to the fine grid ``(B, 1, fY, fX)``."""
        return nn.functional.pixel_shuffle(x.float(), self.config.method.factor)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        m: DeepStormConfig = self.config.method
        pred, tgt = self.fine(prediction), self.fine(target)
        pad = self.kernel.shape[-1] // 2
        blur_p = nn.functional.conv2d(pred, self.kernel, padding=pad)
        blur_t = nn.functional.conv2d(tgt, self.kernel, padding=pad)
        loss = torch.mean((blur_p - blur_t) ** 2)
        if m.l1_weight:
            loss = loss + m.l1_weight * pred.abs().mean()
        return loss

    @classmethod
    def export_notes(cls, model: Model) -> dict[str, Any]:
        """Sub-pixel channels and how they become the super-resolved image."""
        m: DeepStormConfig = model.config.method
        f = m.factor
        return {
            "inputs": ["frame"],
            "outputs": [f"subpixel_y{a}_x{b}" for a in range(f) for b in range(f)],
            "steps": [
                "Input: one camera frame in photons over the photon scale (the package's "
                "scale_linear pre-processing does this from camera counts).",
                f"Output channel a*{f}+b is sub-pixel (row a, column b) of each camera "
                f"pixel: rearranged by pixel shuffle (depth-to-space, factor {f}) the "
                f"channels form a {f} times finer emitter-density image "
                f"({m.simulation.pixel_size / f:g} nm pixels).",
                f"microsight clips it at 0, divides it by the spike height ({m.spike:g}) "
                "and sums it over all frames of the movie: the reconstruction."]}

    # --- training data -------------------------------------------------------------
    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path | None,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Simulated (or given) frames with rearranged fine-grid spike targets."""
        m: DeepStormConfig = config.method
        if not is_simulated(input_path) and target_path is None:
            raise MicrosightError(
                "method deepstorm learns from a movie and its ground-truth table: pass "
                "--target table.csv, or --input simulate to train on simulated movies")

        def build(movie: np.ndarray, truth: np.ndarray
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
            x = scaled_input(movie, m)[:, None]
            y = spike_targets(truth, len(movie), movie.shape[1:], m)
            return list(x), list(y)

        return make_training_set(m, config.training.seed, input_path, target_path, axes, build)

    # --- prediction ----------------------------------------------------------------
    @classmethod
    def reconstruct(cls, model: Model, frames_adu: np.ndarray, *,
                    progress: bool = False) -> np.ndarray:
        """Super-resolved image ``(factor Y, factor X)``: the sum of per-frame outputs."""
        m: DeepStormConfig = model.config.method
        module = model.module
        x = scaled_input(frames_adu, m)
        total = None
        steps = range(0, len(x), m.frame_batch)
        if progress:
            from rich.progress import track

            steps = track(steps, description="reconstructing")
        with torch.inference_mode():
            for lo in steps:
                batch = torch.from_numpy(x[lo:lo + m.frame_batch, None])
                batch, h, w = pad_to(batch, module.divisor)
                out = module.fine(module.network(batch)[..., :h, :w])
                part = out.clamp(min=0).sum(0)[0]
                total = part if total is None else total + part
        return (total.numpy() / m.spike).astype(np.float32)

    @classmethod
    def predict_item(cls, model: Model, item: np.ndarray, settings: TileSettings | None = None
                     ) -> np.ndarray:
        """Super-resolved image ``(1, factor Y, factor X)`` of one frame ``(1, Y, X)``."""
        return cls.reconstruct(model, np.asarray(item)[:1])[None]

    @classmethod
    def predict_image(cls, model: Model, image: Image, out: str | Path | None = None, *,
                      settings: TileSettings | None = None, progress: bool = False
                      ) -> np.ndarray | Path:
        """Super-resolved image of a movie (``TYX``; ``YX`` is one frame).

        Returns
        -------
        numpy.ndarray or Path
            ``(factor Y, factor X)`` image (emitters per fine pixel summed over
            frames), or the file written to ``out`` with its pixel size.
        """
        m: DeepStormConfig = model.config.method
        check_pixel_size(image, m)
        recon = cls.reconstruct(model, movie_frames(image), progress=progress)
        if out is None:
            return recon
        size_um = m.simulation.pixel_size / m.factor / 1000
        return write_image(out, recon, "YX", {"Y": size_um, "X": size_um})

    # --- evaluation ----------------------------------------------------------------
    @classmethod
    def evaluate_model(cls, model: Model, input: str | Path, target: str | Path, *,
                       axes: str | None = None, report: str | Path | None = None,
                       settings: TileSettings | None = None) -> Evaluation:
        """NMSE and FRC resolution of the reconstruction and of the classical baseline.

        The reference is the ground-truth table rendered on the fine grid (histogram
        blurred by ``target_sigma``); the baseline is the classical fit's table
        rendered the same way.
        """
        m: DeepStormConfig = model.config.method
        movie, truth = read_eval_pair(input, target, axes)
        fine = m.simulation.pixel_size / m.factor
        size = (movie.shape[1] * m.simulation.pixel_size, movie.shape[2] * m.simulation.pixel_size)
        sigma_nm = m.target_sigma * fine
        reference = render_gaussian(truth, size, fine, sigma=sigma_nm)
        start = time.perf_counter()
        recon = cls.reconstruct(model, movie)
        t_net = time.perf_counter() - start
        start = time.perf_counter()
        classical = render_gaussian(classical_table(movie, m), size, fine, sigma=sigma_nm)
        t_cls = time.perf_counter() - start
        name = Path(input).name
        rows = []
        for source, img, secs in (("network", recon, t_net),
                                  ("classical MLE fit", classical, t_cls)):
            rows.append({"image": name, "source": source,
                         **reconstruction_scores(img, reference, pixel_size=fine),
                         "seconds": secs})
        result = Evaluation(rows, compact_summary(rows, METRICS))
        if report is not None:

            rep = evaluation_report(
                model, rows, subtitle="method deepstorm (super-resolved SMLM reconstruction)")
            rep.add_table("Test metrics", rows,
                          note="NMSE after a least-squares gain; FRC resolution at the 1/7 "
                               "threshold against the rendered ground truth (nm).")
            rep.add_figure("Reconstructions", reconstruction_figure(
                {"ground truth": reference, "Deep-STORM": recon, "classical": classical,
                 "widefield (sum)": render_histogram(truth[:0], size, fine) + np.kron(
                     movie.sum(0), np.ones((m.factor, m.factor)))}),
                caption=f"{m.factor}x finer grid ({fine:g} nm pixels).")
            model_sections(rep, model)
            result.report_path = rep.write(report)
        return result
