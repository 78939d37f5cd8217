"""Lesson 05's interactive explorers of a trained sweep (:mod:`course_lib.experiments.latent_sweep`).

Each explorer is a slider panel, a text readout and one figure sent as a PNG to an ``ipywidgets.Image``:
:class:`Explorer` is that plumbing, :class:`SweepExplorer` (latent dimension x beta -> reconstructions, prior
samples, metrics and the rate-distortion plot) lives here, the 2-D latent map and the interpolation explorer in
:mod:`course_lib.experiments.latent_map_explorers`.

Only APIs common to ipywidgets 7.6+ and 8 are used (sliders, HTML, Image, HBox/VBox, ``observe``,
``add_class``); figures are drawn with matplotlib's Agg renderer, no ipympl. Everything slow is precomputed by
the sweep, so a slider move only redraws; each explorer records its redraw times in ``redraw_seconds``.
:meth:`Explorer.static_figure` draws the figure at the default slider values as a plain matplotlib figure, for
readers who see the notebook without a kernel.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_lib.experiments.latent_sweep import N_SHOWN, Sweep
from course_lib.measure import timed
from course_lib.viz import grid_array

DPI = 80
"""Resolution of the PNG each redraw sends to the browser (dots per inch of the figure size)."""
LABEL_STYLE = {"description_width": "initial"}
PALETTE = plt.get_cmap("tab10")


def _png(canvas: FigureCanvasAgg) -> bytes:
    """The canvas's current pixels as a PNG (fast, light compression: the bytes only travel to the browser)."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def bare(ax: plt.Axes) -> None:
    """No ticks, no frame: an axes that only shows an image."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def message_widget(text: str, css_name: str) -> widgets.HTML:
    """What an explorer shows instead of its panel when the sweep lacks the models it needs."""
    box = widgets.HTML(value=f"<p style='color:#a00'><b>{html.escape(text)}</b></p>")
    box.add_class(f"{css_name}-readout")
    return box


class Explorer:
    """Sliders -> redraw -> PNG in an Image widget and text in an HTML readout.

    A subclass defines ``_state`` (the slider values), ``_build`` (the figure's artists; those under "dynamic"
    change with the sliders) and ``_draw`` (update the artists for a state, return the readout's HTML), and
    ends its ``__init__`` with :meth:`_finish`.
    """

    figsize: tuple[float, float] = (10.5, 4.0)
    css_name = "explorer"

    def __init__(self, dpi: int = DPI) -> None:
        self.dpi = dpi
        self.redraw_seconds: list[float] = []
        self.readout = widgets.HTML(value="")
        self.readout.add_class(f"{self.css_name}-readout")
        self.image = widgets.Image(format="png")
        self.image.add_class(f"{self.css_name}-image")
        self.sliders: list[widgets.Widget] = []
        self.fig = Figure(figsize=self.figsize, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        self._artists: dict | None = None

    def _finish(self, sliders: Sequence[widgets.Widget], controls: widgets.Widget) -> None:
        self.sliders = list(sliders)
        self._defaults = self._state()
        self._artists = self._build(self.fig)
        # Blitting: draw everything that never changes once, keep those pixels, and on each slider move
        # repaint only the artists listed under "dynamic" (images, markers, titles) on top of them.
        for artist in self._artists["dynamic"]:
            artist.set_animated(True)
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        for slider in self.sliders:
            slider.observe(self.redraw, names="value")
        self.widget = widgets.VBox([controls, self.readout, self.image])
        self.widget.add_class(self.css_name)
        self.redraw()

    def _state(self) -> tuple:
        raise NotImplementedError

    def _build(self, fig: Figure) -> dict:
        raise NotImplementedError

    def _draw(self, artists: dict, state: tuple) -> str:
        raise NotImplementedError

    def _repaint(self) -> None:
        self.readout.value = self._draw(self._artists, self._state())
        self.canvas.restore_region(self._background)
        for artist in self._artists["dynamic"]:
            self.fig.draw_artist(artist)
        self.image.value = _png(self.canvas)

    def redraw(self, change: object = None) -> None:
        """Redraw the figure and the readout for the current slider values (the slider callback)."""
        _, seconds = timed(self._repaint)
        self.redraw_seconds.append(seconds)

    def static_figure(self) -> Figure:
        """The explorer's figure at its default slider values, as a plain pyplot figure (call plt.show())."""
        fig = plt.figure(figsize=self.figsize)
        self._draw(self._build(fig), self._defaults)
        return fig

    def _ipython_display_(self) -> None:  # display(explorer) shows its widget
        from IPython.display import display

        display(self.widget)


class SweepExplorer(Explorer):
    """Sliders for latent dimension and beta over the sweep's grid; positions without a model say so."""

    figsize = (10.5, 4.3)
    css_name = "sweep-explorer"

    def __init__(self, sweep: Sweep, latent_dim: int | None = None, beta: float | None = None, dpi: int = DPI):
        super().__init__(dpi)
        self.sweep = sweep
        trained = sweep.trained_positions()
        if not trained:
            raise ValueError("the sweep has no VAE to explore")
        default = (16, 1.0) if (16, 1.0) in sweep.vaes else trained[0]
        latent_dim = default[0] if latent_dim is None else latent_dim
        beta = default[1] if beta is None else beta
        self.latent_slider = widgets.SelectionSlider(
            options=[(str(d), d) for d in sweep.latent_dims], value=latent_dim, description="latent dimension",
            style=LABEL_STYLE,
        )
        self.latent_slider.add_class("latent-dim-slider")
        self.beta_slider = widgets.SelectionSlider(
            options=[(f"{b:g}", b) for b in sweep.betas], value=float(beta), description="beta (KL weight)",
            style=LABEL_STYLE,
        )
        self.beta_slider.add_class("beta-slider")
        sliders = [self.latent_slider, self.beta_slider]
        self._finish(sliders, widgets.HBox(sliders))

    def _state(self) -> tuple:
        return (self.latent_slider.value, self.beta_slider.value)

    def _trained_text(self) -> str:
        dims = sorted({d for d, _ in self.sweep.vaes})
        betas = sorted({b for _, b in self.sweep.vaes})
        return f"latent {{{', '.join(map(str, dims))}}} x beta {{{', '.join(f'{b:g}' for b in betas)}}}"

    def _build(self, fig: Figure) -> dict:
        grid = fig.add_gridspec(2, 2, width_ratios=[1.6, 1.0], wspace=0.2, hspace=0.35)  # pragma: no mutate
        ax_recon, ax_prior = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
        ax_rd = fig.add_subplot(grid[:, 1])
        self._blank = np.ones((2 * 30 + 2, N_SHOWN * 30 + 2))
        artists = {name: ax.imshow(self._blank, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                   for name, ax in (("recon", ax_recon), ("prior", ax_prior))}  # fmt: skip
        for ax in (ax_recon, ax_prior):
            bare(ax)
        # pragma: no mutate start (styling: where labels and titles sit, their fonts and colours)
        label = {"ha": "right", "va": "center", "fontsize": 9}
        row_labels = [
            ax_recon.text(-0.01, 0.75, "test", transform=ax_recon.transAxes, **label),
            ax_recon.text(-0.01, 0.25, "recon-\nstructed", transform=ax_recon.transAxes, **label),
            ax_prior.text(-0.01, 0.5, "decoded\nz ~ N(0, I)", transform=ax_prior.transAxes, **label),
        ]
        artists["recon_title"] = ax_recon.set_title("", fontsize=10)
        artists["prior_title"] = ax_prior.set_title("", fontsize=10)
        artists["missing"] = fig.text(0.3, 0.5, "", ha="center", va="center", fontsize=11, color="#a00", wrap=True)
        # pragma: no mutate end
        self._plot_rate_distortion(ax_rd)
        # pragma: no mutate start (styling)
        (artists["current"],) = ax_rd.plot([], [], "o", ms=14, mfc="none", mec="red", mew=2.5, label="shown model")
        artists["current_text"] = ax_rd.annotate(
            "", (0, 0), xytext=(8, 8), textcoords="offset points", color="red", fontsize=9
        )
        ax_rd.legend(fontsize=8, loc="upper right")
        fig.subplots_adjust(left=0.085, right=0.98, top=0.88, bottom=0.13)
        artists["suptitle"] = fig.suptitle("", fontsize=11)
        # pragma: no mutate end
        artists["row_labels"] = row_labels
        artists["dynamic"] = [artists[k] for k in (
            "recon", "prior", "recon_title", "prior_title", "missing", "current", "current_text", "suptitle"
        )] + row_labels  # fmt: skip
        return artists

    def _plot_rate_distortion(self, ax: plt.Axes) -> None:
        """Every trained VAE as a (rate, distortion) point: one line per latent dimension, beta along the line."""
        for d in sorted({d for d, _ in self.sweep.vaes}):
            entries = [self.sweep.vaes[(d, b)] for b in self.sweep.betas if (d, b) in self.sweep.vaes]
            kl = [e.metrics["kl"] for e in entries]
            bce = [e.metrics["bce"] for e in entries]
            color = PALETTE(self.sweep.latent_dims.index(d) % 10 if d in self.sweep.latent_dims else 9)
            ax.plot(kl, bce, "o-", color=color, ms=5, lw=1.2, label=f"latent {d}")
            for entry, x, y in zip(entries, kl, bce):
                # pragma: no mutate start (styling)
                ax.annotate(f"β={entry.beta:g}", (x, y), xytext=(-5, 4), textcoords="offset points", fontsize=7,
                            color=color, ha="right")  # fmt: skip
                # pragma: no mutate end
        kls = [e.metrics["kl"] for e in self.sweep.vaes.values()]
        if min(kls) > 0 and max(kls) / min(kls) > 30:
            ax.set_xscale("log")
        # pragma: no mutate start (styling and label text)
        ax.set_xlabel("rate: KL(q(z|x) || p(z))  [nats / image]")
        ax.set_ylabel("distortion: -log p(x|z)  [nats / image]")
        ax.set_title("rate-distortion of the sweep (test set)\none line per latent dimension; larger beta, "
                     "lower rate", fontsize=9)  # fmt: skip
        ax.grid(alpha=0.3)
        # pragma: no mutate end

    def _draw(self, artists: dict, state: tuple) -> str:
        latent_dim, beta = state
        entry = self.sweep.vae(latent_dim, beta)
        for label in artists["row_labels"]:
            label.set_visible(entry is not None)
        if entry is None:
            for key in ("recon", "prior"):
                artists[key].set_data(self._blank)
            for key in ("recon_title", "prior_title", "current_text"):
                artists[key].set_text("")
            artists["current"].set_data([], [])
            artists["missing"].set_text(
                f"No model trained at latent dimension {latent_dim}, beta {beta:g}.\n"
                f"This run has {self._trained_text()}."
            )
            artists["suptitle"].set_text(f"latent dimension {latent_dim}, beta {beta:g}: no model")
            n_grid = len(self.sweep.latent_dims) * len(self.sweep.betas)
            return (
                f"<b>No model trained at latent dimension {latent_dim}, beta {beta:g}.</b> "
                f"This run trained {html.escape(self._trained_text())} ({len(self.sweep.vaes)} of {n_grid} grid "
                "positions); fast mode trains only a corner of the grid (COURSE_MODE=reference or full trains "
                "all of it). Move a slider to a trained position."
            )
        artists["missing"].set_text("")
        n = entry.reconstructions.shape[0]
        originals = self.sweep.test_images[self.sweep.shown]
        artists["recon"].set_data(grid_array(torch.cat([originals, entry.reconstructions]), nrow=n))
        artists["prior"].set_data(grid_array(entry.prior_samples, nrow=n))
        artists["recon_title"].set_text(f"{n} test digits and their reconstructions (decoded at z = mu)")
        artists["prior_title"].set_text("samples from the prior: decode z ~ N(0, I)")
        m = entry.metrics
        artists["current"].set_data([m["kl"]], [m["bce"]])
        artists["current_text"].xy = (m["kl"], m["bce"])
        artists["current_text"].set_text(f"latent {latent_dim}, beta {beta:g}")
        artists["suptitle"].set_text(f"VAE with latent dimension {latent_dim}, beta = {beta:g}")
        return (
            f"<b>VAE, latent dimension {latent_dim}, beta = {beta:g}</b> (test set): "
            f"MSE {m['mse']:.4f} per pixel &middot; reconstruction {m['bce']:.1f} nats &middot; "
            f"KL {m['kl']:.2f} nats &middot; negative ELBO {m['neg_elbo']:.1f} nats per image &middot; "
            f"active units {int(m['active_units'])} of {latent_dim}"
        )


def measure_redraws(explorer: Explorer, moves_per_slider: int = 6) -> list[float]:
    """Move each slider of ``explorer`` through up to ``moves_per_slider`` values; return each redraw's seconds.

    The sliders are set back to where they were afterwards (those moves are not counted). Measure an explorer
    that is not on display: a browser showing it may echo the rapid moves back after the reset.
    """
    seconds: list[float] = []
    for slider in explorer.sliders:
        start = slider.value
        if isinstance(slider, widgets.SelectionSlider):
            values = [value for _, value in slider.options]
        else:
            values = [float(v) for v in np.linspace(slider.min, slider.max, moves_per_slider + 1)]
            if isinstance(slider, widgets.IntSlider):
                values = [int(v) for v in values]
        for value in [v for v in values if v != start][:moves_per_slider]:
            before = len(explorer.redraw_seconds)
            slider.value = value
            seconds.extend(explorer.redraw_seconds[before:])
        slider.value = start
    return seconds
