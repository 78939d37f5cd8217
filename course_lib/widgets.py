"""Interactive explorers of a trained sweep (see :mod:`course_lib.sweep`), built from ipywidgets.

Three explorers, each a slider panel, a text readout and one figure sent as a PNG to a ``widgets.Image``:

- :class:`SweepExplorer`: latent dimension x beta -> test reconstructions, prior samples, test metrics and
  the sweep's rate-distortion plot with the current model highlighted;
- :class:`LatentMapExplorer`: a 2-D latent space -> the test set's latent means coloured by digit, a point
  (z1, z2) decoded live, and a grid of decodings over the plane;
- :class:`InterpolationExplorer`: a path between two test digits, in pixel space, in an AE's and in a
  VAE's latent space, with a slider along the path.

Only APIs common to ipywidgets 7.6+ and 8 are used (sliders, HTML, Image, HBox/VBox, ``observe``,
``add_class``); figures are drawn with matplotlib's Agg renderer, no ipympl. Everything slow (latent means,
reconstructions, prior samples, metrics) is precomputed by the sweep, so a slider move only redraws: each
explorer records its redraw times in ``redraw_seconds``. :meth:`static_figure` draws the same figure at the
default slider values as a plain matplotlib figure, for readers who see the notebook without a kernel.
"""

from __future__ import annotations

import html
import io
import time
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_lib.sweep import INTERPOLATION_LATENT_DIM, N_SHOWN, Sweep, SweepModel

DPI = 80
"""Resolution of the PNG each redraw sends to the browser (dots per inch of the figure size)."""
_LABEL_STYLE = {"description_width": "initial"}
_PALETTE = plt.get_cmap("tab10")


def _mosaic(images: torch.Tensor | np.ndarray, nrow: int, pad: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """Tile images (N, 1, 28, 28) into one array, ``nrow`` per row, grey lines between them."""
    images = np.asarray(torch.as_tensor(images).detach().cpu().clamp(0, 1))[:, 0]
    n, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad), pad_value, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, nrow)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = image
    return out


def _png(canvas: FigureCanvasAgg) -> bytes:
    """The canvas's current pixels as a PNG (fast, light compression: the bytes only travel to the browser)."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _fmt_beta(beta: float) -> str:
    return f"{beta:g}"


def _bare(ax: plt.Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


class _Explorer:
    """Shared plumbing: sliders -> redraw -> PNG in an Image widget and text in an HTML readout."""

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

    # Subclasses define these three.
    def _state(self) -> tuple:
        raise NotImplementedError

    def _build(self, fig: Figure) -> dict:
        raise NotImplementedError

    def _draw(self, artists: dict, state: tuple) -> str:
        """Update the figure's artists for ``state``; return the readout's HTML."""
        raise NotImplementedError

    def redraw(self, change: object = None) -> None:
        """Redraw the figure and the readout for the current slider values (the slider callback)."""
        started = time.perf_counter()
        self.readout.value = self._draw(self._artists, self._state())
        self.canvas.restore_region(self._background)
        for artist in self._artists["dynamic"]:
            self.fig.draw_artist(artist)
        self.image.value = _png(self.canvas)
        self.redraw_seconds.append(time.perf_counter() - started)

    def static_figure(self) -> Figure:
        """The explorer's figure at its default slider values, as a plain pyplot figure (call plt.show())."""
        fig = plt.figure(figsize=self.figsize)
        self._draw(self._build(fig), self._defaults)
        return fig

    def _ipython_display_(self) -> None:  # display(explorer) shows its widget
        from IPython.display import display

        display(self.widget)


def _message_widget(text: str, css_name: str) -> widgets.HTML:
    box = widgets.HTML(value=f"<p style='color:#a00'><b>{html.escape(text)}</b></p>")
    box.add_class(f"{css_name}-readout")
    return box


class SweepExplorer(_Explorer):
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
            options=[(str(d), d) for d in sweep.latent_dims],
            value=latent_dim,
            description="latent dimension",
            style=_LABEL_STYLE,
        )
        self.latent_slider.add_class("latent-dim-slider")
        self.beta_slider = widgets.SelectionSlider(
            options=[(_fmt_beta(b), b) for b in sweep.betas],
            value=float(beta),
            description="beta (KL weight)",
            style=_LABEL_STYLE,
        )
        self.beta_slider.add_class("beta-slider")
        sliders = [self.latent_slider, self.beta_slider]
        self._finish(sliders, widgets.HBox(sliders))

    def _state(self) -> tuple:
        return (self.latent_slider.value, self.beta_slider.value)

    def _trained_text(self) -> str:
        dims = sorted({d for d, _ in self.sweep.vaes})
        betas = sorted({b for _, b in self.sweep.vaes})
        return (
            f"latent {{{', '.join(map(str, dims))}}} x beta {{{', '.join(map(_fmt_beta, betas))}}}"
            f" ({len(self.sweep.vaes)} of {len(self.sweep.latent_dims) * len(self.sweep.betas)} grid positions)"
        )

    def _build(self, fig: Figure) -> dict:
        grid = fig.add_gridspec(2, 2, width_ratios=[1.6, 1.0], height_ratios=[1, 1], wspace=0.2, hspace=0.35)
        ax_recon, ax_prior = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
        ax_rd = fig.add_subplot(grid[:, 1])
        self._blank = np.ones((2 * 30 + 2, N_SHOWN * 30 + 2))
        artists = {"recon": ax_recon.imshow(self._blank, cmap="gray", vmin=0, vmax=1, interpolation="nearest")}
        artists["prior"] = ax_prior.imshow(self._blank, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        for ax in (ax_recon, ax_prior):
            _bare(ax)
        row_labels = [
            ax_recon.text(-0.01, 0.75, "test", transform=ax_recon.transAxes, ha="right", va="center", fontsize=9),
            ax_recon.text(-0.01, 0.25, "recon-\nstructed", transform=ax_recon.transAxes, ha="right", va="center",
                          fontsize=9),
            ax_prior.text(-0.01, 0.5, "decoded\nz ~ N(0, I)", transform=ax_prior.transAxes, ha="right",
                          va="center", fontsize=9),
        ]
        artists["recon_title"] = ax_recon.set_title("", fontsize=10)
        artists["prior_title"] = ax_prior.set_title("", fontsize=10)
        artists["missing"] = fig.text(0.3, 0.5, "", ha="center", va="center", fontsize=11, color="#a00", wrap=True)
        # Rate-distortion plot of every trained model: one line per latent dimension, beta along the line.
        for d in sorted({d for d, _ in self.sweep.vaes}):
            entries = [self.sweep.vaes[(d, b)] for b in self.sweep.betas if (d, b) in self.sweep.vaes]
            kl = [e.metrics["kl"] for e in entries]
            bce = [e.metrics["bce"] for e in entries]
            color = _PALETTE(self.sweep.latent_dims.index(d) % 10 if d in self.sweep.latent_dims else 9)
            ax_rd.plot(kl, bce, "o-", color=color, ms=5, lw=1.2, label=f"latent {d}")
            for entry, x, y in zip(entries, kl, bce):
                ax_rd.annotate(f"β={_fmt_beta(entry.beta)}", (x, y), xytext=(-5, 4), textcoords="offset points",
                               fontsize=7, color=color, ha="right")
        kls = [e.metrics["kl"] for e in self.sweep.vaes.values()]
        if min(kls) > 0 and max(kls) / min(kls) > 30:
            ax_rd.set_xscale("log")
        (artists["current"],) = ax_rd.plot([], [], "o", ms=14, mfc="none", mec="red", mew=2.5, label="shown model")
        artists["current_text"] = ax_rd.annotate(
            "", (0, 0), xytext=(8, 8), textcoords="offset points", color="red", fontsize=9
        )
        ax_rd.set_xlabel("rate: KL(q(z|x) || p(z))  [nats / image]")
        ax_rd.set_ylabel("distortion: -log p(x|z)  [nats / image]")
        ax_rd.set_title("rate-distortion of the sweep (test set)\none line per latent dimension; larger beta, "
                        "lower rate", fontsize=9)
        ax_rd.grid(alpha=0.3)
        ax_rd.legend(fontsize=8, loc="upper right")
        fig.subplots_adjust(left=0.085, right=0.98, top=0.88, bottom=0.13)
        artists["suptitle"] = fig.suptitle("", fontsize=11)
        artists["row_labels"] = row_labels
        artists["dynamic"] = [artists[k] for k in (
            "recon", "prior", "recon_title", "prior_title", "missing", "current", "current_text", "suptitle"
        )] + row_labels
        return artists

    def _draw(self, artists: dict, state: tuple) -> str:
        latent_dim, beta = state
        entry = self.sweep.vae(latent_dim, beta)
        if entry is None:
            for key in ("recon", "prior"):
                artists[key].set_data(self._blank)
            for key in ("recon_title", "prior_title"):
                artists[key].set_text("")
            for label in artists["row_labels"]:
                label.set_visible(False)
            artists["current"].set_data([], [])
            artists["current_text"].set_text("")
            artists["missing"].set_text(
                f"No model trained at latent dimension {latent_dim}, beta {_fmt_beta(beta)}.\n"
                f"This run has {self._trained_text().split(' (')[0]}."
            )
            artists["suptitle"].set_text(f"latent dimension {latent_dim}, beta {_fmt_beta(beta)}: no model")
            return (
                f"<b>No model trained at latent dimension {latent_dim}, beta {_fmt_beta(beta)}.</b> "
                f"This run trained {html.escape(self._trained_text())}; FAST mode trains only a corner "
                "of the grid (run without COURSE_FAST=1 for all of it). Move a slider to a trained position."
            )
        artists["missing"].set_text("")
        for label in artists["row_labels"]:
            label.set_visible(True)
        n = entry.reconstructions.shape[0]
        originals = self.sweep.test_images[self.sweep.shown]
        artists["recon"].set_data(_mosaic(torch.cat([originals, entry.reconstructions]), nrow=n))
        artists["prior"].set_data(_mosaic(entry.prior_samples, nrow=n))
        artists["recon_title"].set_text(f"{n} test digits and their reconstructions (decoded at z = mu)")
        artists["prior_title"].set_text("samples from the prior: decode z ~ N(0, I)")
        m = entry.metrics
        artists["current"].set_data([m["kl"]], [m["bce"]])
        artists["current_text"].xy = (m["kl"], m["bce"])
        artists["current_text"].set_text(f"latent {latent_dim}, beta {_fmt_beta(beta)}")
        artists["suptitle"].set_text(f"VAE with latent dimension {latent_dim}, beta = {_fmt_beta(beta)}")
        return (
            f"<b>VAE, latent dimension {latent_dim}, beta = {_fmt_beta(beta)}</b> (test set): "
            f"MSE {m['mse']:.4f} per pixel &middot; reconstruction {m['bce']:.1f} nats &middot; "
            f"KL {m['kl']:.2f} nats &middot; negative ELBO {m['neg_elbo']:.1f} nats per image &middot; "
            f"active units {int(m['active_units'])} of {latent_dim}"
        )


class LatentMapExplorer(_Explorer):
    """A 2-D latent space: the test set's latent means by digit, a live-decoded point, a grid of decodings."""

    figsize = (10.5, 3.7)
    css_name = "latent-map-explorer"

    def __init__(
        self,
        sweep: Sweep,
        beta: float | None = None,
        latent_dim: int = 2,
        limit: float = 3.0,
        grid_size: int = 15,
        dpi: int = DPI,
    ):
        super().__init__(dpi)
        self.sweep = sweep
        betas = [b for d, b in sweep.trained_positions() if d == latent_dim]
        beta = (1.0 if 1.0 in betas else (betas[-1] if betas else 1.0)) if beta is None else float(beta)
        self.entry: SweepModel | None = sweep.vae(latent_dim, beta)
        self.limit, self.grid_size = limit, grid_size
        if self.entry is None or latent_dim != 2:
            self.widget = _message_widget(
                f"No 2-D VAE (latent dimension 2, beta {_fmt_beta(beta)}) in this sweep: "
                "train one first (it is part of both the FAST and the full sweep).",
                self.css_name,
            )
            self.readout = self.widget
            return
        self.codes = self.entry.test_codes.numpy()
        self.labels = self.sweep.test_labels.numpy()
        axis = torch.linspace(-limit, limit, grid_size)
        z2, z1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # top row = largest z2
        self.grid_images = _mosaic(self.entry.decode(torch.stack([z1, z2], -1).reshape(-1, 2)), nrow=grid_size)
        self.z1_slider = widgets.FloatSlider(
            value=0.0, min=-limit, max=limit, step=0.1, description="z1", readout_format=".1f"
        )
        self.z2_slider = widgets.FloatSlider(
            value=0.0, min=-limit, max=limit, step=0.1, description="z2", readout_format=".1f"
        )
        self.z1_slider.add_class("z1-slider")
        self.z2_slider.add_class("z2-slider")
        sliders = [self.z1_slider, self.z2_slider]
        self._finish(sliders, widgets.HBox(sliders))

    def _state(self) -> tuple:
        return (round(self.z1_slider.value, 6), round(self.z2_slider.value, 6))

    def _build(self, fig: Figure) -> dict:
        grid = fig.add_gridspec(1, 3, width_ratios=[1.25, 0.55, 1.0], wspace=0.3)
        ax_map, ax_dec, ax_grid = (fig.add_subplot(grid[0, i]) for i in range(3))
        for digit in range(10):
            pts = self.codes[self.labels == digit]
            ax_map.scatter(pts[:, 0], pts[:, 1], s=4, color=_PALETTE(digit), label=str(digit), rasterized=True)
        reach = max(self.limit, float(np.abs(self.codes).max()) if len(self.codes) else self.limit) * 1.05
        ax_map.set_xlim(-reach, reach)
        ax_map.set_ylim(-reach, reach)
        ax_map.set_aspect("equal")
        ax_map.plot(
            [-self.limit, self.limit, self.limit, -self.limit, -self.limit],
            [-self.limit, -self.limit, self.limit, self.limit, -self.limit],
            ls=":",
            color="grey",
            lw=1,
        )
        ax_map.legend(title="digit", fontsize=7, title_fontsize=7, markerscale=2.5, loc="center left",
                      bbox_to_anchor=(1.0, 0.5), handletextpad=0.1, borderpad=0.3)
        ax_map.set_xlabel("z1")
        ax_map.set_ylabel("z2")
        ax_map.set_title("test set: latent means mu(x)", fontsize=10)
        artists = {"map_marker": ax_map.plot([], [], "x", color="black", ms=12, mew=3)[0]}
        artists["decoded"] = ax_dec.imshow(np.zeros((28, 28)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        _bare(ax_dec)
        artists["dec_title"] = ax_dec.set_title("", fontsize=10)
        half = self.limit / (self.grid_size - 1)
        ax_grid.imshow(
            self.grid_images,
            cmap="gray",
            vmin=0,
            vmax=1,
            extent=(-self.limit - half, self.limit + half, -self.limit - half, self.limit + half),
        )
        artists["grid_marker"] = ax_grid.plot([], [], "s", mfc="none", mec="red", ms=10, mew=2)[0]
        ax_grid.set_xlabel("z1")
        ax_grid.set_ylabel("z2")
        ax_grid.set_title(f"decoder on a {self.grid_size} x {self.grid_size} grid", fontsize=10)
        fig.subplots_adjust(left=0.06, right=0.98, top=0.86, bottom=0.14)
        fig.suptitle(f"2-D latent space of the {self.entry.name}", fontsize=11)
        artists["dynamic"] = [artists[k] for k in ("map_marker", "grid_marker", "decoded", "dec_title")]
        return artists

    def nearest(self, z1: float, z2: float) -> tuple[int, int, float]:
        """Index, digit and distance of the test image whose latent mean is nearest to (z1, z2)."""
        distances = np.hypot(self.codes[:, 0] - z1, self.codes[:, 1] - z2)
        i = int(distances.argmin())
        return i, int(self.labels[i]), float(distances[i])

    def _draw(self, artists: dict, state: tuple) -> str:
        z1, z2 = state
        image = self.entry.decode(torch.tensor([[z1, z2]]))[0, 0].numpy()
        artists["decoded"].set_data(image)
        artists["dec_title"].set_text(f"decoded at\nz = ({z1:.1f}, {z2:.1f})")
        artists["map_marker"].set_data([z1], [z2])
        artists["grid_marker"].set_data([z1], [z2])
        index, digit, distance = self.nearest(z1, z2)
        return (
            f"<b>z = ({z1:.2f}, {z2:.2f})</b> decoded live (middle panel, marked x on the map and a red "
            f"square on the grid). Nearest test latent mean: a <b>{digit}</b> (test image #{index}, "
            f"distance {distance:.2f})."
        )


class InterpolationExplorer(_Explorer):
    """Walk from test digit A to test digit B: pixel cross-fade, AE latent path, VAE latent path."""

    figsize = (10.5, 3.6)
    css_name = "interpolation-explorer"

    def __init__(
        self,
        sweep: Sweep,
        latent_dim: int = INTERPOLATION_LATENT_DIM,
        beta: float = 1.0,
        index_a: int | None = None,
        index_b: int | None = None,
        steps: int = 11,
        dpi: int = DPI,
    ):
        super().__init__(dpi)
        self.sweep = sweep
        self.vae, self.ae = sweep.vae(latent_dim, beta), sweep.ae(latent_dim)
        self.steps = steps
        if self.vae is None or self.ae is None:
            self.widget = _message_widget(
                f"Interpolation needs an AE and a VAE (beta {_fmt_beta(beta)}) of latent dimension {latent_dim};"
                " this sweep lacks " + " and ".join(
                    name for name, m in (("the AE", self.ae), ("the VAE", self.vae)) if m is None
                ) + ".",
                self.css_name,
            )
            self.readout = self.widget
            return
        labels = sweep.test_labels.tolist()
        n = len(labels)
        index_a = (labels.index(3) if 3 in labels else 0) if index_a is None else index_a
        index_b = (labels.index(8) if 8 in labels else n - 1) if index_b is None else index_b
        self.a_slider = widgets.IntSlider(value=index_a, min=0, max=n - 1, description="test image A #")
        self.b_slider = widgets.IntSlider(value=index_b, min=0, max=n - 1, description="test image B #")
        self.t_slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="t (A to B)")
        for slider, name in ((self.a_slider, "a"), (self.b_slider, "b"), (self.t_slider, "t")):
            slider.style = _LABEL_STYLE
            slider.add_class(f"interp-{name}-slider")
        self._strip_cache: dict[tuple[int, int], dict] = {}
        sliders = [self.a_slider, self.b_slider, self.t_slider]
        self._finish(sliders, widgets.VBox([widgets.HBox(sliders[:2]), self.t_slider]))

    def _state(self) -> tuple:
        return (int(self.a_slider.value), int(self.b_slider.value), round(float(self.t_slider.value), 6))

    def _paths(self, a: int, b: int, ts: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images along the three paths at the fractions ``ts``: pixels, AE latent, VAE latent (z = mu)."""
        x_a, x_b = self.sweep.test_images[a], self.sweep.test_images[b]
        w = ts.view(-1, 1, 1, 1)
        out = {"pixels": (1 - w) * x_a + w * x_b}
        for name, entry in (("AE", self.ae), ("VAE", self.vae)):
            z_a, z_b = entry.test_codes[a], entry.test_codes[b]
            out[name] = entry.decode((1 - ts.view(-1, 1)) * z_a + ts.view(-1, 1) * z_b)
        return out

    def _strips(self, a: int, b: int) -> dict:
        if (a, b) not in self._strip_cache:
            paths = self._paths(a, b, torch.linspace(0, 1, self.steps))
            self._strip_cache = {(a, b): {k: _mosaic(v, nrow=self.steps) for k, v in paths.items()}}
        return self._strip_cache[(a, b)]

    def _build(self, fig: Figure) -> dict:
        grid = fig.add_gridspec(3, 2, width_ratios=[5.2, 1.0], wspace=0.08, hspace=0.45)
        half = 0.5 / (self.steps - 1)
        artists: dict = {"strips": {}, "lines": [], "now": {}}
        names = ("pixels", "AE", "VAE")
        rows = {
            "pixels": "pixel space:\ncross-fade",
            "AE": f"AE latent\n({self.ae.latent_dim}-D)",
            "VAE": f"VAE latent\n({self.vae.latent_dim}-D)",
        }
        for row, name in enumerate(names):
            ax = fig.add_subplot(grid[row, 0])
            blank = np.zeros((30 + 2, self.steps * 30 + 2))
            artists["strips"][name] = ax.imshow(
                blank, cmap="gray", vmin=0, vmax=1, interpolation="nearest", extent=(-half, 1 + half, 0, 1),
                aspect="auto",
            )
            artists["lines"].append(ax.axvline(0.5, color="red", lw=2))
            ax.set_yticks([])
            ax.set_ylabel(rows[name], rotation=0, ha="right", va="center", fontsize=9)
            ax.set_xticks(np.linspace(0, 1, 6) if row == 2 else [])
            if row == 2:
                ax.set_xlabel("t: fraction of the way from A (t = 0) to B (t = 1)")
            ax_now = fig.add_subplot(grid[row, 1])
            artists["now"][name] = ax_now.imshow(
                np.zeros((28, 28)), cmap="gray", vmin=0, vmax=1, interpolation="nearest"
            )
            _bare(ax_now)
        artists["now_title"] = fig.axes[1].set_title("", fontsize=9)
        fig.subplots_adjust(left=0.12, right=0.99, top=0.86, bottom=0.17)
        artists["suptitle"] = fig.suptitle("", fontsize=11)
        artists["dynamic"] = [
            *artists["strips"].values(), *artists["lines"], *artists["now"].values(),
            artists["now_title"], artists["suptitle"],
        ]
        return artists

    def _draw(self, artists: dict, state: tuple) -> str:
        a, b, t = state
        strips = self._strips(a, b)
        now = self._paths(a, b, torch.tensor([t]))
        for name, image in artists["strips"].items():
            image.set_data(strips[name])
            artists["now"][name].set_data(now[name][0, 0].numpy())
        for line in artists["lines"]:
            line.set_xdata([t, t])
        artists["now_title"].set_text(f"at t = {t:.2f}")
        label_a, label_b = int(self.sweep.test_labels[a]), int(self.sweep.test_labels[b])
        artists["suptitle"].set_text(
            f"from test image #{a} (a {label_a}) to test image #{b} (a {label_b}): straight lines in three spaces"
        )
        gap_ae = float((self.ae.test_codes[b] - self.ae.test_codes[a]).norm())
        gap_vae = float((self.vae.test_codes[b] - self.vae.test_codes[a]).norm())
        return (
            f"<b>A = test image #{a} (a {label_a}), B = test image #{b} (a {label_b}), t = {t:.2f}</b>. "
            f"Length of the latent path |z_B - z_A|: AE {gap_ae:.2f}, VAE {gap_vae:.2f} "
            "(each in its own latent units)."
        )


def measure_redraws(explorer: _Explorer, moves_per_slider: int = 6) -> list[float]:
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
