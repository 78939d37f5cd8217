"""Figures the notebooks share: image grids, the article's comparison figure, loss curves."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def image_grid(
    images: torch.Tensor,
    nrow: int = 8,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    scale: float = 1.0,
) -> Figure:
    """Show images (N, 1, 28, 28) in rows of ``nrow``, optional row labels on the left, pixel values 0-1."""
    images = images.detach().float().cpu().clamp(0, 1)
    rows = (len(images) + nrow - 1) // nrow
    fig, axes = plt.subplots(rows, nrow, figsize=(nrow * 0.9 * scale, rows * 0.95 * scale), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(images):
            ax.imshow(images[i, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    if row_labels is not None:
        for row, label in zip(axes[:, 0], row_labels):
            row.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    if title:
        fig.suptitle(title)
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
        _, ax = plt.subplots(figsize=(6, 3.5))
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
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
