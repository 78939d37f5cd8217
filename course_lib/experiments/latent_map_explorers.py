"""Lesson 05's explorers of the latent space itself (the plumbing is :class:`latent_explorers.Explorer`):

- :class:`LatentMapExplorer`: a 2-D latent space -> the test set's latent means coloured by digit, a point
  (z1, z2) decoded live, and a grid of decodings over the plane;
- :class:`InterpolationExplorer`: a straight path between two test digits in pixel space, in an AE's and in a
  VAE's latent space (:func:`course_lib.evaluate.interpolate`), with a slider along the path.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib.evaluate import decode, interpolate
from course_lib.experiments.latent_explorers import DPI, LABEL_STYLE, PALETTE, Explorer, bare, message_widget
from course_lib.experiments.latent_sweep import INTERPOLATION_LATENT_DIM, Sweep, SweepModel
from course_lib.viz import grid_array


class LatentMapExplorer(Explorer):
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
            self.widget = self.readout = message_widget(
                f"No 2-D VAE (latent dimension 2, beta {beta:g}) in this sweep: "
                "train one first (it is part of the sweep in every mode).",
                self.css_name,
            )
            return
        self.codes = self.entry.test_codes.numpy()
        self.labels = self.sweep.test_labels.numpy()
        axis = torch.linspace(-limit, limit, grid_size)
        z2, z1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # top row = largest z2
        plane = torch.stack([z1, z2], -1).reshape(-1, 2)
        self.grid_images = grid_array(decode(self.entry.model, plane), nrow=grid_size)
        self.z1_slider, self.z2_slider = (
            widgets.FloatSlider(value=0.0, min=-limit, max=limit, step=0.1, description=name,
                                readout_format=".1f")  # pragma: no mutate
            for name in ("z1", "z2")
        )
        self.z1_slider.add_class("z1-slider")
        self.z2_slider.add_class("z2-slider")
        sliders = [self.z1_slider, self.z2_slider]
        self._finish(sliders, widgets.HBox(sliders))

    def _state(self) -> tuple:
        return (round(self.z1_slider.value, 6), round(self.z2_slider.value, 6))

    def _build(self, fig: Figure) -> dict:
        grid = fig.add_gridspec(1, 3, width_ratios=[1.25, 0.55, 1.0], wspace=0.3)  # pragma: no mutate
        ax_map, ax_dec, ax_grid = (fig.add_subplot(grid[0, i]) for i in range(3))
        for digit in range(10):
            pts = self.codes[self.labels == digit]
            ax_map.scatter(pts[:, 0], pts[:, 1], s=4, color=PALETTE(digit), label=str(digit), rasterized=True)
        reach = max(self.limit, float(np.abs(self.codes).max()) if len(self.codes) else self.limit) * 1.05
        ax_map.set_xlim(-reach, reach)
        ax_map.set_ylim(-reach, reach)
        ax_map.set_aspect("equal")
        corners = np.array([-1, 1, 1, -1, -1]) * self.limit
        ax_map.plot(corners, np.roll(corners, 1), ls=":", color="grey", lw=1)  # the square the grid decodes
        # pragma: no mutate start (styling: legend, title, marker style)
        ax_map.legend(title="digit", fontsize=7, title_fontsize=7, markerscale=2.5, loc="center left",
                      bbox_to_anchor=(1.0, 0.5), handletextpad=0.1, borderpad=0.3)  # fmt: skip
        ax_map.set_title("test set: latent means mu(x)", fontsize=10)
        artists = {"map_marker": ax_map.plot([], [], "x", color="black", ms=12, mew=3)[0]}
        # pragma: no mutate end
        artists["decoded"] = ax_dec.imshow(np.zeros((28, 28)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        bare(ax_dec)
        artists["dec_title"] = ax_dec.set_title("", fontsize=10)  # pragma: no mutate
        half = self.limit / (self.grid_size - 1)
        reach = self.limit + half
        ax_grid.imshow(self.grid_images, cmap="gray", vmin=0, vmax=1, extent=(-reach, reach, -reach, reach))
        # pragma: no mutate start (styling: marker style, titles, axis labels, margins)
        artists["grid_marker"] = ax_grid.plot([], [], "s", mfc="none", mec="red", ms=10, mew=2)[0]
        ax_grid.set_title(f"decoder on a {self.grid_size} x {self.grid_size} grid", fontsize=10)
        for ax in (ax_map, ax_grid):
            ax.set_xlabel("z1")
            ax.set_ylabel("z2")
        fig.subplots_adjust(left=0.06, right=0.98, top=0.86, bottom=0.14)
        fig.suptitle(f"2-D latent space of the {self.entry.name}", fontsize=11)
        # pragma: no mutate end
        artists["dynamic"] = [artists[k] for k in ("map_marker", "grid_marker", "decoded", "dec_title")]
        return artists

    def nearest(self, z1: float, z2: float) -> tuple[int, int, float]:
        """Index, digit and distance of the test image whose latent mean is nearest to (z1, z2)."""
        distances = np.hypot(self.codes[:, 0] - z1, self.codes[:, 1] - z2)
        i = int(distances.argmin())
        return i, int(self.labels[i]), float(distances[i])

    def _draw(self, artists: dict, state: tuple) -> str:
        z1, z2 = state
        artists["decoded"].set_data(decode(self.entry.model, torch.tensor([[z1, z2]]))[0, 0].numpy())
        artists["dec_title"].set_text(f"decoded at\nz = ({z1:.1f}, {z2:.1f})")
        artists["map_marker"].set_data([z1], [z2])
        artists["grid_marker"].set_data([z1], [z2])
        index, digit, distance = self.nearest(z1, z2)
        return (
            f"<b>z = ({z1:.2f}, {z2:.2f})</b> decoded live (middle panel, marked x on the map and a red "
            f"square on the grid). Nearest test latent mean: a <b>{digit}</b> (test image #{index}, "
            f"distance {distance:.2f})."
        )


class InterpolationExplorer(Explorer):
    """Walk from test digit A to test digit B: pixel cross-fade, AE latent path, VAE latent path.

    Each path is decoded once per (A, B) at ``2 * (steps - 1) + 1`` points, the positions of the t slider; the
    strips show every second one (``steps`` images), the right column the one at the slider.
    """

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
        self.steps, self.frames = steps, 2 * (steps - 1) + 1
        if self.vae is None or self.ae is None:
            missing = " and ".join(name for name, m in (("the AE", self.ae), ("the VAE", self.vae)) if m is None)
            self.widget = self.readout = message_widget(
                f"Interpolation needs an AE and a VAE (beta {beta:g}) of latent dimension {latent_dim};"
                f" this sweep lacks {missing}.",
                self.css_name,
            )
            return
        labels = sweep.test_labels.tolist()
        n = len(labels)
        index_a = (labels.index(3) if 3 in labels else 0) if index_a is None else index_a
        index_b = (labels.index(8) if 8 in labels else n - 1) if index_b is None else index_b
        self.a_slider = widgets.IntSlider(value=index_a, min=0, max=n - 1, description="test image A #")
        self.b_slider = widgets.IntSlider(value=index_b, min=0, max=n - 1, description="test image B #")
        self.t_slider = widgets.FloatSlider(
            value=0.5, min=0.0, max=1.0, step=1 / (self.frames - 1), description="t (A to B)"
        )
        for slider, name in ((self.a_slider, "a"), (self.b_slider, "b"), (self.t_slider, "t")):
            slider.style = LABEL_STYLE
            slider.add_class(f"interp-{name}-slider")
        self._path_cache: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        sliders = [self.a_slider, self.b_slider, self.t_slider]
        self._finish(sliders, widgets.VBox([widgets.HBox(sliders[:2]), self.t_slider]))

    def _state(self) -> tuple:
        return (int(self.a_slider.value), int(self.b_slider.value), round(float(self.t_slider.value), 6))

    def paths(self, a: int, b: int) -> dict[str, torch.Tensor]:
        """Images (frames, 1, 28, 28) along the straight paths from test image ``a`` to ``b``: in pixels, and
        decoded from the AE's and the VAE's latent codes (z = mu)."""
        if (a, b) not in self._path_cache:
            images = self.sweep.test_images
            pixels = interpolate(images[a].reshape(1, -1), images[b].reshape(1, -1), self.frames)
            out = {"pixels": pixels.reshape(self.frames, *images.shape[1:])}
            for name, entry in (("AE", self.ae), ("VAE", self.vae)):
                codes = entry.test_codes
                out[name] = decode(entry.model, interpolate(codes[a : a + 1], codes[b : b + 1], self.frames)[0])
            self._path_cache = {(a, b): out}
        return self._path_cache[(a, b)]

    def _build(self, fig: Figure) -> dict:
        grid = fig.add_gridspec(3, 2, width_ratios=[5.2, 1.0], wspace=0.08, hspace=0.45)  # pragma: no mutate
        half = 0.5 / (self.steps - 1)
        artists: dict = {"strips": {}, "lines": [], "now": {}}
        rows = {
            "pixels": "pixel space:\ncross-fade",  # pragma: no mutate
            "AE": f"AE latent\n({self.ae.latent_dim}-D)",
            "VAE": f"VAE latent\n({self.vae.latent_dim}-D)",
        }
        for row, (name, label) in enumerate(rows.items()):
            ax = fig.add_subplot(grid[row, 0])
            blank = np.zeros((30 + 2, self.steps * 30 + 2))
            artists["strips"][name] = ax.imshow(blank, cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                                                extent=(-half, 1 + half, 0, 1), aspect="auto")  # fmt: skip
            # pragma: no mutate start (styling: the line's look, ticks and labels; _draw places the line)
            artists["lines"].append(ax.axvline(0.5, color="red", lw=2))
            ax.set_yticks([])
            ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
            ax.set_xticks(np.linspace(0, 1, 6) if row == 2 else [])
            if row == 2:
                ax.set_xlabel("t: fraction of the way from A (t = 0) to B (t = 1)")
            # pragma: no mutate end
            ax_now = fig.add_subplot(grid[row, 1])
            artists["now"][name] = ax_now.imshow(np.zeros((28, 28)), cmap="gray", vmin=0, vmax=1,
                                                 interpolation="nearest")  # fmt: skip
            bare(ax_now)
        artists["now_title"] = fig.axes[1].set_title("", fontsize=9)
        fig.subplots_adjust(left=0.12, right=0.99, top=0.86, bottom=0.17)  # pragma: no mutate
        artists["suptitle"] = fig.suptitle("", fontsize=11)  # pragma: no mutate
        artists["dynamic"] = [
            *artists["strips"].values(), *artists["lines"], *artists["now"].values(),
            artists["now_title"], artists["suptitle"],
        ]  # fmt: skip
        return artists

    def _draw(self, artists: dict, state: tuple) -> str:
        a, b, t = state
        paths = self.paths(a, b)
        frame = round(t * (self.frames - 1))
        for name, image in artists["strips"].items():
            image.set_data(grid_array(paths[name][::2], nrow=self.steps))
            artists["now"][name].set_data(paths[name][frame, 0].numpy())
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
