"""Draw the course's architecture diagrams with matplotlib: images/ae_architecture.png, images/vae_architecture.png.

Run from anywhere: ``python images/make_diagrams.py``. The layer widths are those of the seed article's
improved models (course_lib presets "seed-improved-ae" and "seed-improved-vae").
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Polygon, Rectangle  # noqa: E402

HERE = Path(__file__).resolve().parent
ENCODER, DECODER, LATENT, SAMPLE = "#4C72B0", "#55A868", "#DD8452", "#8172B2"
BAR_W = 0.32


def bar_height(width: int) -> float:
    """Bar height for a layer of ``width`` units (log scale, so 16 and 784 both stay visible)."""
    return 0.55 * math.log2(width)


def draw_bar(ax, x: float, width: int, color: str, label: str | None = None, y: float = 0.0) -> tuple:
    h = bar_height(width)
    ax.add_patch(Rectangle((x - BAR_W / 2, y - h / 2), BAR_W, h, color=color, ec="black", lw=0.8, zorder=3))
    ax.text(x, y - h / 2 - 0.25, f"{width}", ha="center", va="top", fontsize=9)
    if label:
        ax.text(x, y + h / 2 + 0.2, label, ha="center", va="bottom", fontsize=12)
    return (x, y, h)


def join(ax, a: tuple, b: tuple, color: str) -> None:
    """Shade the fully connected layer between two bars."""
    (xa, ya, ha), (xb, yb, hb) = a, b
    pts = [(xa + BAR_W / 2, ya - ha / 2), (xb - BAR_W / 2, yb - hb / 2), (xb - BAR_W / 2, yb + hb / 2),
           (xa + BAR_W / 2, ya + ha / 2)]
    ax.add_patch(Polygon(pts, closed=True, color=color, alpha=0.18, lw=0, zorder=1))


def bracket(ax, x0: float, x1: float, y: float, text: str, color: str) -> None:
    ax.plot([x0, x0, x1, x1], [y - 0.15, y, y, y - 0.15], color=color, lw=1.5)
    ax.text((x0 + x1) / 2, y + 0.12, text, ha="center", va="bottom", fontsize=11, color=color)


def arrow(ax, start: tuple, end: tuple, **kw) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, lw=1.3, zorder=4, **kw))


def ae_diagram(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(10, 4.2))
    enc, dec = [784, 256, 128, 64], [64, 128, 256, 784]
    bars = [draw_bar(ax, i, w, ENCODER, r"$x$" if i == 0 else None) for i, w in enumerate(enc)]
    bars.append(draw_bar(ax, 4, 16, LATENT, r"$z$"))
    bars += [draw_bar(ax, 5 + i, w, DECODER, r"$\hat{x}$" if i == 3 else None) for i, w in enumerate(dec)]
    for i, (a, b) in enumerate(zip(bars[:-1], bars[1:])):
        join(ax, a, b, ENCODER if i < 4 else DECODER)
    top = bar_height(784) / 2 + 0.9
    bracket(ax, 0, 3.6, top, r"encoder $z = f_\phi(x)$", ENCODER)
    bracket(ax, 3.8, 4.2, top - 1.6, "bottleneck\n(16 numbers)", LATENT)
    bracket(ax, 4.4, 8, top, r"decoder $\hat{x} = g_\theta(z)$", DECODER)
    low = -bar_height(784) / 2 - 0.9
    arrow(ax, (0, low), (8, low), color="black", connectionstyle="arc3,rad=0")
    ax.text(4, low - 0.2, r"reconstruction loss  $\mathcal{L}(x, \hat{x}) = \frac{1}{784}\,\|x - \hat{x}\|^2$"
            "   (784 = 28 x 28 pixels in [0, 1])", ha="center", va="top", fontsize=11)
    ax.set_title("Autoencoder (the seed article's improved AE: 784-256-128-64-16-64-128-256-784, "
                 "numbers = units per layer)", fontsize=11)
    ax.set_xlim(-0.7, 8.7)
    ax.set_ylim(low - 1.0, top + 1.0)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def vae_diagram(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 4.8))
    bars = [draw_bar(ax, i, w, ENCODER, r"$x$" if i == 0 else None) for i, w in enumerate([784, 256, 128])]
    for a, b in zip(bars[:-1], bars[1:]):
        join(ax, a, b, ENCODER)
    mu = draw_bar(ax, 3.3, 16, LATENT, None, y=1.5)
    logvar = draw_bar(ax, 3.3, 16, LATENT, None, y=-1.5)
    ax.text(3.3 + 0.3, 1.5, r"$\mu$", fontsize=13, va="center")
    ax.text(3.3 + 0.3, -1.5, r"$\log\sigma^2$", fontsize=13, va="center")
    join(ax, bars[-1], mu, ENCODER)
    join(ax, bars[-1], logvar, ENCODER)
    z = draw_bar(ax, 5.2, 16, SAMPLE, r"$z$")
    arrow(ax, (3.8, 1.5), (5.0, 0.3), color=LATENT)
    arrow(ax, (4.15, -1.5), (5.0, -0.3), color=LATENT)
    ax.text(5.2, -2.0, r"$z = \mu + \sigma \odot \varepsilon$" "\n" r"$\varepsilon \sim \mathcal{N}(0, I)$",
            ha="center", va="top", fontsize=11, color=SAMPLE)
    dec = [draw_bar(ax, 6.4 + i, w, DECODER, r"$\hat{x}$" if i == 2 else None) for i, w in enumerate([128, 256])]
    out = draw_bar(ax, 8.4, 784, DECODER, r"$\hat{x}$")
    dec = [z, *dec[:2], out]
    for a, b in zip(dec[:-1], dec[1:]):
        join(ax, a, b, DECODER)
    top = bar_height(784) / 2 + 0.9
    bracket(ax, 0, 3.6, top, r"probabilistic encoder $q_\phi(z \mid x) = \mathcal{N}(\mu, \mathrm{diag}\,\sigma^2)$",
            ENCODER)
    bracket(ax, 4.8, 5.6, top - 1.3, "sample\n(reparameterized)", SAMPLE)
    bracket(ax, 6.0, 8.6, top, r"decoder $p_\theta(x \mid z)$ (Bernoulli means)", DECODER)
    low = -bar_height(784) / 2 - 1.0
    ax.text(4.3, low, r"loss per image (nats) $= \mathrm{BCE}(x, \hat{x}) + \beta\,"
            r"\mathrm{KL}\left(\mathcal{N}(\mu, \sigma^2)\,\|\,\mathcal{N}(0, I)\right)$;"
            r"  $\beta = 1$: the negative ELBO",
            ha="center", va="top", fontsize=11)
    ax.set_title("Variational autoencoder (the seed article's improved VAE: 784-256-128-(16, 16)-16-128-256-784)",
                 fontsize=11)
    ax.set_xlim(-0.7, 9.1)
    ax.set_ylim(low - 0.8, top + 1.0)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    ae_diagram(HERE / "ae_architecture.png")
    vae_diagram(HERE / "vae_architecture.png")
    print(f"wrote {HERE / 'ae_architecture.png'} and {HERE / 'vae_architecture.png'}")
