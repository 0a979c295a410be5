"""Self-supervised embedding of cell crops (SimCLR, Chen et al. 2020), clustering and a 2D map.

Two augmented views of every crop (flips/rotations, shifts, gain, noise) are pulled
together and pushed away from the other crops of the batch (NT-Xent loss). The pooled
ResNet features (before the projection head) are the embedding; k-means clusters them
and PCA or t-SNE (scikit-learn, imported lazily) maps them to 2D for exploring
phenotypes without labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microsight.config import Configuration, get_method
from microsight.data.crops import handcrafted_features, object_crops
from microsight.data.layout import item_indices, read_item
from microsight.engine.bundle import Model
from microsight.engine.evaluate import Evaluation, evaluation_report, model_sections
from microsight.engine.module import MicrosightModule
from microsight.engine.progress import progress_bar
from microsight.families.crops.module import (
    CropMixin,
    load_unlabelled_or_classes,
    model_crops,
)
from microsight.io import Image
from microsight.methods.classify.module import dihedral_views, write_results
from microsight.methods.embed.config import EmbedConfig
from microsight.nn.resnet import ResNet


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalized-temperature cross-entropy of two views ``(B, D)`` of the same batch."""
    z = nn.functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / temperature
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return nn.functional.cross_entropy(sim, target)


@torch.inference_mode()
def embed_crops(model: Model, raw: np.ndarray, *, tta: bool = True) -> np.ndarray:
    """Embedding ``(N, F)`` of raw crops ``(N, C, S, S)``, averaged over 8 flips/rotations."""
    crops = model_crops(model, raw)
    module = model.module.eval()
    device = next(module.parameters()).device
    out = []
    for i in range(0, len(crops), 256):
        x = torch.from_numpy(np.ascontiguousarray(crops[i:i + 256])).to(device)
        views = dihedral_views(x) if tta else [x]
        out.append((sum(module.network.features(v).float() for v in views) / len(views)
                    ).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, module.network.feature_size), np.float32)


def cluster(embedding: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means cluster index per row (features standardized first)."""
    from sklearn.cluster import KMeans

    x = _standardize(embedding)
    return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(x)


def project_2d(embedding: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2D coordinates ``(N, 2)`` by PCA or t-SNE (scikit-learn)."""
    x = _standardize(embedding)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(x) - 1) / 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(x)


def _standardize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)


def knn_accuracy(embedding: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy (cosine) of the labels from the embedding."""
    x = _standardize(embedding)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    k = min(k, len(x) - 1)
    nn_idx = np.argsort(-sim, axis=1)[:, :k]
    votes = labels[nn_idx]
    pred = np.array([np.bincount(v, minlength=labels.max() + 1).argmax() for v in votes])
    return float(np.mean(pred == labels))


def embed_objects(model: Model, image: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
    """Embedding of every object of a ``YX`` label image in a ``(C, Y, X)`` image."""
    ids, centroids, raw = object_crops(np.asarray(image, np.float32), labels,
                                       int(model.normalization["crop_size"]))
    emb = embed_crops(model, raw) if len(ids) else np.zeros((0, 0))
    return [{"label": int(i), "centroid_y": float(c[0]), "centroid_x": float(c[1]),
             "embedding": [float(v) for v in e]} for i, c, e in zip(ids, centroids, emb,
                                                                    strict=True)]


def scores(embedding: np.ndarray, labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {"knn_accuracy": knn_accuracy(embedding, labels),
            "adjusted_rand": float(adjusted_rand_score(labels, clusters)),
            "nmi": float(normalized_mutual_info_score(labels, clusters))}


def scatter_figure(xy: np.ndarray, groups: dict[str, tuple[np.ndarray, list[str]]]) -> Any:
    """One scatter panel per colouring (e.g. true class, cluster)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * len(groups), 4.5))
    for k, (title, (values, names)) in enumerate(groups.items()):
        ax = fig.add_subplot(1, len(groups), k + 1)
        for v, name in enumerate(names):
            sel = values == v
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=6, label=f"{name} ({sel.sum()})")
        ax.set_title(title)
        ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    return fig


class EmbedModule(CropMixin, MicrosightModule):
    """ResNet encoder + projection head trained with NT-Xent on two views per crop.

    ``val_loss`` is the NT-Xent loss on augmented validation crops, the only
    validation number.
    """

    allow_unlabelled = True

    def __init__(self, config: Configuration, in_channels: int = 1, out_channels: int = 1):
        super().__init__(config, in_channels, out_channels)
        self._val_sum, self._val_n = 0.0, 0

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: EmbedConfig = config.method
        return ResNet(in_channels, m.projection_dim, tuple(m.widths), m.blocks)

    def _views(self, x: torch.Tensor) -> torch.Tensor:
        x = self.augment_batch(x)
        noise = self.config.method.noise
        if noise > 0:
            x = x + noise * torch.randn(x.shape, generator=self.sampler.generator,
                                        device=x.device)
        return x

    def loss(self, prediction: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        n = prediction.shape[0] // 2
        return nt_xent(prediction[:n], prediction[n:], self.config.method.temperature)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        idx = self.draw_indices(self.config.data.batch_size)
        c, size = self._crops.shape[0], self.sampler.patch[-1]
        x = self._crops[:, idx].transpose(0, 1).reshape(len(idx), c, size, size)
        loss = self.loss(self(torch.cat([self._views(x), self._views(x)])))
        self._train_loss_sum += float(loss.detach())
        self._train_loss_n += 1
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=len(idx))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._val_n = 0.0, 0
        self.sampler.generator.manual_seed(self.sampler.seed + 7)  # same views every epoch

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, _ = batch
        if x.shape[0] < 2:
            return
        loss = self.loss(self(torch.cat([self._views(x), self._views(x)])))
        self._val_sum += float(loss) * x.shape[0]
        self._val_n += x.shape[0]

    def on_validation_epoch_end(self) -> None:
        val = self._val_sum / max(self._val_n, 1)
        self.log("val_loss", val, prog_bar=True)

    # --- prediction and evaluation hooks ------------------------------------------------
    @classmethod
    def predict_image(cls, model: Model, image: Image, out: str | Path | None = None, *,
                      settings: Any = None, progress: bool = False) -> Any:
        """Embedding of an image (each S/T plane one sample, fitted to the crop size)."""
        from microsight.data.crops import fit_to_size

        size = int(model.normalization["crop_size"])
        raw = [fit_to_size(np.asarray(read_item(image.data, image.axes, 2, ix), np.float32),
                           size) for ix in item_indices(image.axes, image.shape, 2, image.name)]
        with progress_bar(progress, "crops") as bar:
            task = bar.add_task(f"embedding {image.name}", total=len(raw))
            emb = embed_crops(model, np.stack(raw))
            bar.advance(task, len(raw))
        results = [{"image": image.name, "index": i, "embedding": [float(v) for v in e]}
                   for i, e in enumerate(emb)]
        if out is not None:
            return write_results(results, out)
        return emb[0] if len(emb) == 1 else emb

    @classmethod
    def evaluate_model(cls, model: Model, input: str | Path, target: str | Path | None = None,
                       *, axes: str | None = None, report: str | Path | None = None,
                       settings: Any = None) -> Evaluation:
        """Embed, cluster and map a folder of crops; with class subfolders, score how well
        the embedding separates the classes (k-NN accuracy, ARI/NMI of the clusters)
        against hand-crafted features. ``target`` is ignored."""
        size = int(model.normalization["crop_size"])
        path = Path(input)
        raw, y, names, samples = load_unlabelled_or_classes(path, size, axes, allow_flat=True)
        m: EmbedConfig = model.config.method
        k = m.n_clusters or (len(names) if len(names) > 1 else 5)
        k = max(1, min(k, len(raw)))
        sources = {"network": embed_crops(model, raw),
                   "hand-crafted features": handcrafted_features(raw)}
        rows, summary, maps = [], [], {}
        for source, emb in sources.items():
            groups = cluster(emb, k)
            xy = project_2d(emb, m.projection)
            maps[source] = (xy, groups)
            row: dict[str, Any] = {"source": source, "images": len(raw), "clusters": k}
            if len(names) > 1:
                row.update(scores(emb, y, groups))
            summary.append(row)
            rows += [{"image": s, "source": source, "class": names[t], "cluster": int(g),
                      "x": float(p[0]), "y": float(p[1])}
                     for s, t, g, p in zip(samples, y, groups, xy, strict=True)]
        result = Evaluation(rows, summary)
        result.maps = maps
        if report is not None:
            info = get_method(model.method)
            rep = evaluation_report(model, result.rows, title="embedding",
                                    subtitle=f"method {info.name} ({info.summary})")
            rep.add_table("Embedding quality", summary,
                          note="k-NN accuracy: leave-one-out 5 nearest neighbours (cosine) "
                               "predicting the class; ARI / NMI: k-means clusters vs classes.")
            for source, (xy, groups) in maps.items():
                rep.add_figure(f"2D map ({m.projection}): {source}", scatter_figure(
                    xy, {"class": (y, names),
                         "cluster": (groups, [f"cluster {i}" for i in range(k)])}))
            model_sections(rep, model)
            result.report_path = rep.write(report)
        return result
