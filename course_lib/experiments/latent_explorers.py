"""Lesson 05's interactive explorers of a trained sweep (:mod:`course_lib.experiments.latent_sweep`).

Each explorer is a slider panel, a text readout and one figure sent as a PNG to an ``ipywidgets.Image``:
:class:`Explorer` is that plumbing, :class:`SweepExplorer` (latent dimension x beta -> reconstructions, prior
samples, metrics and the rate-distortion plot) and :func:`plot_unit_activity` (which latent units collapse) live
here, the 2-D latent map and the interpolation explorer in :mod:`course_lib.experiments.latent_map_explorers`.

Only APIs common to ipywidgets 7.6+ and 8 are used (sliders, HTML, Image, HBox/VBox, ``observe``,
``add_class``); figures are drawn with matplotlib's Agg renderer, no ipympl. Everything slow is precomputed by
the sweep, so a slider move only redraws; each explorer records its redraw times in ``redraw_seconds``.
:meth:`Explorer.static_figure` draws the figure at the default slider values as a plain matplotlib figure, for
readers who see the notebook without a kernel.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_lib.evaluate import ACTIVE_UNIT_THRESHOLD
from course_lib.experiments.latent_sweep import N_SHOWN, Sweep
from course_lib.measure import timed
from course_lib.viz import grid_array

DPI = 80
"""Resolution of the PNG each redraw sends to the browser (dots per inch of the figure size)."""
LABEL_STYLE = {"description_width": "initial"}
PALETTE = plt.get_cmap("tab10")
BETA_LABEL_SIZE = 7
"""Font size (points) of the beta labels on the rate-distortion plot."""


LABEL_PLACES: tuple[tuple[tuple[float, float], str, str], ...] = (
    ((-5, -5), "right", "top"),
    ((5, 5), "left", "bottom"),
    ((5, -5), "left", "top"),
    ((-5, 5), "right", "bottom"),
    ((0, -9), "center", "top"),
    ((0, 9), "center", "bottom"),
    ((-9, -13), "right", "top"),
    ((9, 13), "left", "bottom"),
    ((9, -13), "left", "top"),
    ((-9, 13), "right", "bottom"),
)
"""Where a point's label may sit: (offset in points, horizontal and vertical alignment), in order of preference."""


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Overlap area of two boxes (x0, y0, x1, y1)."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_labels(
    points: Sequence[tuple[float, float]],
    sizes: Sequence[tuple[float, float]],
    avoid: Sequence[tuple[float, float, float, float]] = (),
    bounds: tuple[float, float, float, float] | None = None,
) -> list[tuple[tuple[float, float], str, str]]:
    """A place from :data:`LABEL_PLACES` for the label of each point, chosen greedily, one point after the other:
    the first place whose box overlaps no label placed before, no box in ``avoid`` and stays inside ``bounds``,
    else the place with the least overlap. Everything in points (1/72 inch) on the figure: ``points`` (x, y),
    ``sizes`` (width, height) of each label, boxes as (x0, y0, x1, y1)."""
    placed: list[tuple[float, float, float, float]] = []
    chosen = []
    for (x, y), (width, height) in zip(points, sizes, strict=True):
        best, best_cost = LABEL_PLACES[0], math.inf
        for place in LABEL_PLACES:
            (dx, dy), ha, va = place
            x0 = x + dx - {"right": width, "center": width / 2, "left": 0.0}[ha]
            y0 = y + dy - (height if va == "top" else 0.0)
            box = (x0, y0, x0 + width, y0 + height)
            cost = sum(_overlap(box, other) for other in [*placed, *avoid])
            if bounds is not None:
                cost += width * height - _overlap(box, bounds)
            if cost < best_cost:
                best, best_cost, best_box = place, cost, box
            if cost == 0:
                break
        chosen.append(best)
        placed.append(best_box)
    return chosen


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
        (artists["shown_curve"],) = ax_rd.plot([], [], "-", lw=2.8, zorder=3)  # the shown dimension's line
        (artists["current"],) = ax_rd.plot([], [], "o", ms=14, mfc="none", mec="red", mew=2.5, zorder=4,
                                           label="shown model")  # fmt: skip
        # beta labels on the shown latent dimension's line only (labels on every line overlap), each placed
        # where it hides no other label and no point of that line (place_labels), on a white ground
        artists["beta_labels"] = [
            ax_rd.annotate("", (0, 0), xytext=(0, 0), textcoords="offset points", fontsize=BETA_LABEL_SIZE,
                           zorder=5, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
            for _ in self.sweep.betas
        ]  # fmt: skip
        ax_rd.legend(fontsize=8, loc="upper right")
        fig.subplots_adjust(left=0.085, right=0.98, top=0.88, bottom=0.13)
        artists["suptitle"] = fig.suptitle("", fontsize=11)
        # pragma: no mutate end
        artists["row_labels"] = row_labels
        artists["dynamic"] = [artists[k] for k in (
            "recon", "prior", "recon_title", "prior_title", "missing", "shown_curve", "current", "suptitle"
        )] + row_labels + artists["beta_labels"]  # fmt: skip
        return artists

    def _color(self, latent_dim: int) -> tuple:
        return PALETTE(self.sweep.latent_dims.index(latent_dim) % 10 if latent_dim in self.sweep.latent_dims else 9)

    def _curve(self, latent_dim: int) -> list:
        """The trained VAEs of one latent dimension, by increasing beta."""
        return [self.sweep.vaes[(latent_dim, b)] for b in self.sweep.betas if (latent_dim, b) in self.sweep.vaes]

    def _plot_rate_distortion(self, ax: plt.Axes) -> None:
        """Every trained VAE as a point (rate R = metrics["kl"], distortion D = metrics["distortion"]): one line per
        latent dimension, beta along the line (labelled on the shown dimension's line, see ``_draw``)."""
        for d in sorted({d for d, _ in self.sweep.vaes}):
            entries = self._curve(d)
            rate = [e.metrics["kl"] for e in entries]
            distortion = [e.metrics["distortion"] for e in entries]
            ax.plot(rate, distortion, "o-", color=self._color(d), ms=5, lw=1.2, label=f"latent {d}")
        kls = [e.metrics["kl"] for e in self.sweep.vaes.values()]
        if min(kls) > 0 and max(kls) / min(kls) > 30:
            ax.set_xscale("log")
        # pragma: no mutate start (styling and label text)
        ax.set_xlabel("rate R: KL(q(z|x) || p(z))  [nats / image]")
        ax.set_ylabel("distortion D: -log p(x|z), sampled z  [nats / image]")
        ax.set_title("rate-distortion of the sweep (test set)\none line per latent dimension, "
                     "β on the shown one", fontsize=9)  # fmt: skip
        ax.grid(alpha=0.3)
        # pragma: no mutate end
        ax.get_xlim(), ax.get_ylim()  # settle the limits now: _label_beta places labels in display space

    def _label_beta(self, artists: dict, curve: list, shown: int | None = None) -> None:
        """Label each point of the shown line with its beta (no labels without a shown model); ``shown``: the
        index in ``curve`` of the circled model, whose ring the labels avoid as well."""
        line, labels = artists["shown_curve"], artists["beta_labels"]
        xy = [(e.metrics["kl"], e.metrics["distortion"]) for e in curve]
        line.set_data([x for x, _ in xy], [y for _, y in xy])
        for label in labels[len(curve):]:
            label.set_text("")
        if not curve:
            return
        color = self._color(curve[0].latent_dim)
        line.set_color(color)
        ax = line.axes
        to_points = 72.0 / ax.figure.dpi
        points = [tuple(p * to_points) for p in ax.transData.transform(np.array(xy))]
        renderer = ax.figure.canvas.get_renderer()
        sizes = []
        for label, point, entry in zip(labels, xy, curve):
            label.xy = point
            label.set_text(f"β={entry.beta:g}")
            label.set_color(color)
            extent = label.get_window_extent(renderer)  # the text's own box; its white ground adds ~1 point
            sizes.append((extent.width * to_points + 2, extent.height * to_points + 2))
        dots = [(x - r, y - r, x + r, y + r) for i, (x, y) in enumerate(points) for r in [9 if i == shown else 4]]
        box = ax.get_window_extent()
        bounds = tuple(v * to_points for v in (box.x0, box.y0, box.x1, box.y1))
        for label, ((dx, dy), ha, va) in zip(labels, place_labels(points, sizes, dots, bounds)):
            label.set_position((dx, dy))
            label.set_horizontalalignment(ha)
            label.set_verticalalignment(va)

    def _draw(self, artists: dict, state: tuple) -> str:
        latent_dim, beta = state
        entry = self.sweep.vae(latent_dim, beta)
        for label in artists["row_labels"]:
            label.set_visible(entry is not None)
        curve = self._curve(latent_dim) if entry is not None else []
        self._label_beta(artists, curve, next((i for i, e in enumerate(curve) if e is entry), None))
        if entry is None:
            for key in ("recon", "prior"):
                artists[key].set_data(self._blank)
            for key in ("recon_title", "prior_title"):
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
        artists["current"].set_data([m["kl"]], [m["distortion"]])
        artists["suptitle"].set_text(f"VAE with latent dimension {latent_dim}, beta = {beta:g}")
        return (
            f"<b>VAE, latent dimension {latent_dim}, beta = {beta:g}</b> (test set, per image): "
            f"rate R = KL {m['kl']:.2f} nats &middot; distortion D {m['distortion']:.1f} nats (sampled z; "
            f"{m['bce']:.1f} at z = mu) &middot; negative ELBO D + R {m['neg_elbo']:.1f} nats &middot; "
            f"MSE {m['mse']:.4f} per pixel (z = mu) &middot; active units {int(m['active_units_cov'])} of {latent_dim} "
            f"(Var of mu > 0.01; {int(m['active_units'])} by KL > 0.01 nats)"
        )


def plot_unit_activity(sweep: Sweep, latent_dim: int, betas: Sequence[float] | None = None) -> Figure:
    """Each latent unit's activity at ``latent_dim`` for several betas, both definitions side by side.

    Left: Var_x(mu_u(x)), the covariance definition; right: the unit's KL averaged over the test set, in nats.
    Units are sorted by their variance (largest first), in the same order in both panels; log scale, with the
    0.01 threshold as a dashed line: points below it are inactive (collapsed) units. ``betas``: the trained betas
    > 0 at ``latent_dim`` by default (beta = 0 has no KL term, so nothing pulls its codes to the prior).
    Returns a pyplot figure (call plt.show()).
    """
    if betas is None:
        betas = [b for b in sweep.betas if b > 0 and sweep.vae(latent_dim, b) is not None]
    entries = [sweep.vae(latent_dim, b) for b in betas]
    if not entries or any(e is None for e in entries):
        missing = [f"{b:g}" for b, e in zip(betas, entries) if e is None]
        raise ValueError(f"the sweep has no VAE of latent dimension {latent_dim} at beta {', '.join(missing)}")
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(entries)))
    rank = np.arange(1, latent_dim + 1)
    for entry, color in zip(entries, colors):
        order = torch.argsort(entry.unit_variance, descending=True)
        for ax, values in zip(axes, (entry.unit_variance, entry.unit_kl)):
            ax.plot(rank, values[order].clamp_min(1e-6).numpy(), "o-", color=color, ms=4, lw=1.2,
                    label=f"β = {entry.beta:g}: {int(entry.metrics['active_units_cov'])} active")  # fmt: skip
    # pragma: no mutate start (styling and label text)
    titles = ("covariance definition: Var over test images of $\\mu_u(x)$",
              "KL definition: KL($q(z_u|x)\\,\\|\\,\\mathcal{N}(0,1)$), mean over test images")
    for ax, title, unit in zip(axes, titles, ("[latent units²]", "[nats / image]")):
        ax.axhline(ACTIVE_UNIT_THRESHOLD, color="red", ls="--", lw=1, label="threshold 0.01")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("latent unit, sorted by Var $\\mu_u$ (largest first)")
        ax.set_xticks(rank if latent_dim <= 16 else rank[::4])
        ax.set_ylabel(f"per-unit value {unit}")
        ax.grid(alpha=0.3)
    low = min(min(ax.get_ylim()[0] for ax in axes), 0.5 * ACTIVE_UNIT_THRESHOLD)
    high = max(ax.get_ylim()[1] for ax in axes)
    for ax in axes:  # one scale for both panels (their units differ, their thresholds are the same number)
        ax.set_ylim(low, high)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="center right")
    fig.suptitle(f"Which latent units does the VAE use? latent dimension {latent_dim}, test set", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    # pragma: no mutate end
    return fig


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
