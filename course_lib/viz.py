"""Figures the notebooks share: image grids (torchvision's make_grid, one imshow), the article's comparison
figure, loss curves and predicted-class histograms."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

PAD = 2
"""Pixels of grey between the tiles of a grid."""


def grid_array(images: torch.Tensor, nrow: int, pad: int = PAD, pad_value: float = 0.5) -> np.ndarray:
    """Images (N, 1, H, W) in [0, 1] tiled ``nrow`` to a row into one 2-D array, grey lines between them."""
    images = images.detach().float().cpu().clamp(0, 1)
    return make_grid(images, nrow=nrow, padding=pad, pad_value=pad_value)[0].numpy()


def show_grid(ax: plt.Axes, images: torch.Tensor, nrow: int, row_labels: Sequence[str] | None = None) -> None:
    """Draw :func:`grid_array` of ``images`` on ``ax`` (grey scale, 0 = black, 1 = white), labelling its rows."""
    tiles = grid_array(images, nrow)
    ax.imshow(tiles, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if row_labels is not None:
        tile = images.shape[-2] + PAD
        ax.set_yticks([PAD + tile * (i + 0.5) for i in range(len(row_labels))], list(row_labels), fontsize=10)
        ax.tick_params(left=False)


def image_grid(
    images: torch.Tensor,
    nrow: int = 8,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    scale: float = 1.0,
) -> Figure:
    """A figure of images (N, 1, 28, 28) in rows of ``nrow``, optional row labels on the left."""
    rows = (len(images) + nrow - 1) // nrow
    fig, ax = plt.subplots(figsize=(nrow * 0.9 * scale, rows * 0.95 * scale + (0.4 if title else 0)))
    show_grid(ax, images, nrow, row_labels)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def comparison_figure(
    originals: torch.Tensor, ae_recon: torch.Tensor, vae_recon: torch.Tensor, title: str | None = None
) -> Figure:
    """The article's 3 x 8 figure: test originals, AE reconstructions, VAE reconstructions."""
    n = min(8, len(originals))
    rows = torch.cat([originals[:n], ae_recon[:n], vae_recon[:n]])
    return image_grid(rows, nrow=n, title=title, row_labels=["original", "AE", "VAE"])


def plot_history(
    histories: dict[str, Sequence[dict[str, float]]],
    keys: Sequence[str] = ("train_loss", "test_loss"),
    ylabel: str = "loss",
    logy: bool = False,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Curves of ``keys`` against epoch for each named history (a :class:`course_lib.train.History`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))  # pragma: no mutate
    for name, history in histories.items():
        records = getattr(history, "records", history)
        for key in keys:
            points = [(r["epoch"], r[key]) for r in records if key in r]
            if points:
                epochs, values = zip(*points)
                ax.plot(epochs, values, label=f"{name} {key.replace('_', ' ')}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)  # pragma: no mutate
    ax.legend(fontsize=8)  # pragma: no mutate
    return ax


def plot_class_histograms(
    histograms: dict[str, torch.Tensor], ax: plt.Axes | None = None, title: str | None = None
) -> plt.Axes:
    """Grouped bars: the predicted-class counts of several image sets, with the uniform count as a line."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))  # pragma: no mutate
    width = 0.8 / max(len(histograms), 1)
    for i, (name, counts) in enumerate(histograms.items()):
        xs = [d + (i - (len(histograms) - 1) / 2) * width for d in range(10)]
        ax.bar(xs, counts.tolist(), width=width, label=name)
    total = int(next(iter(histograms.values())).sum()) if histograms else 0
    if total:
        ax.axhline(total / 10, color="black", lw=1, ls="--", label="uniform (N / 10)")
    ax.set_xticks(range(10))
    ax.set_xlabel("digit predicted by the course classifier")  # pragma: no mutate
    ax.set_ylabel("number of images")  # pragma: no mutate
    ax.set_title(title or "Which digits does each model generate?")
    ax.legend(fontsize=8)  # pragma: no mutate
    return ax
