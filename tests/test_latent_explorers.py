"""Lesson 05's explorers (course_lib.experiments.latent_explorers and latent_map_explorers), headless."""

from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib.evaluate import decode  # noqa: E402
from course_lib.experiments import latent_explorers as explorers  # noqa: E402
from course_lib.experiments import latent_map_explorers as maps  # noqa: E402
from course_lib.experiments import latent_sweep  # noqa: E402
from course_lib.losses import BetaVAEObjective, MSEObjective  # noqa: E402
from course_lib.models import ModelConfig, build_model  # noqa: E402

PNG_MAGIC = b"\x89PNG"


def _model(kind: str, latent_dim: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind, latent_dim, (32,), (32,)))


@pytest.fixture(scope="module")
def tiny_sweep() -> latent_sweep.Sweep:
    """Untrained small models at three grid positions and an AE, a 40-image test set with every digit."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 28, 28, generator=generator)
    labels = torch.arange(40) % 10
    models = [
        (_model("vae", 2, 1), BetaVAEObjective(1.0)),
        (_model("vae", 2, 2), BetaVAEObjective(0.5)),
        (_model("vae", 16, 3), BetaVAEObjective(1.0)),
        (_model("ae", 16, 4), MSEObjective()),
    ]
    return latent_sweep.Sweep.from_models(models, images, labels)


def test_sweep_explorer_builds_and_redraws_on_slider_moves(tiny_sweep):
    explorer = explorers.SweepExplorer(tiny_sweep)
    assert (explorer.latent_slider.value, explorer.beta_slider.value) == (16, 1.0)
    assert bytes(explorer.image.value).startswith(PNG_MAGIC)
    assert "latent dimension 16" in explorer.readout.value and "active units" in explorer.readout.value
    readout, image = explorer.readout.value, bytes(explorer.image.value)

    explorer.latent_slider.value = 2
    assert "latent dimension 2, beta = 1" in explorer.readout.value
    assert explorer.readout.value != readout and bytes(explorer.image.value) != image

    readout, image = explorer.readout.value, bytes(explorer.image.value)
    explorer.beta_slider.value = 0.5
    assert "beta = 0.5" in explorer.readout.value
    assert explorer.readout.value != readout and bytes(explorer.image.value) != image


def test_sweep_explorer_says_when_a_position_has_no_model(tiny_sweep):
    explorer = explorers.SweepExplorer(tiny_sweep, latent_dim=2, beta=1.0)
    image = bytes(explorer.image.value)
    explorer.latent_slider.value = 3  # no model at (3, 1.0)
    assert "No model trained at latent dimension 3, beta 1" in explorer.readout.value
    assert "Move a slider to a trained position" in explorer.readout.value
    assert bytes(explorer.image.value).startswith(PNG_MAGIC) and bytes(explorer.image.value) != image
    explorer.latent_slider.value = 2  # back to a model: panels come back
    assert "VAE, latent dimension 2" in explorer.readout.value


def test_sweep_explorer_offers_the_whole_grid(tiny_sweep):
    explorer = explorers.SweepExplorer(tiny_sweep)
    assert [v for _, v in explorer.latent_slider.options] == list(latent_sweep.LATENT_DIMS)
    assert [v for _, v in explorer.beta_slider.options] == list(latent_sweep.BETAS)


def test_latent_map_explorer_decodes_the_slider_point(tiny_sweep):
    explorer = maps.LatentMapExplorer(tiny_sweep)
    assert "z = (0.00, 0.00)" in explorer.readout.value
    readout, image = explorer.readout.value, bytes(explorer.image.value)
    explorer.z1_slider.value = 1.5
    assert "z = (1.50, 0.00)" in explorer.readout.value
    assert explorer.readout.value != readout and bytes(explorer.image.value) != image
    index, digit, distance = explorer.nearest(1.5, 0.0)
    assert f"test image #{index}" in explorer.readout.value and digit == int(tiny_sweep.test_labels[index])
    assert distance >= 0
    assert explorer.grid_images.shape == (15 * 30 + 2, 15 * 30 + 2)


def test_latent_map_explorer_without_a_2d_model_says_so(tiny_sweep):
    explorer = maps.LatentMapExplorer(tiny_sweep, beta=4.0)
    assert "No 2-D VAE" in explorer.readout.value
    assert isinstance(explorer.widget, widgets.HTML)


def test_interpolation_explorer_moves_along_the_path(tiny_sweep):
    explorer = maps.InterpolationExplorer(tiny_sweep)
    assert (explorer.a_slider.value, explorer.b_slider.value) == (3, 8)  # first 3 and first 8 in the labels
    readout, image = explorer.readout.value, bytes(explorer.image.value)
    explorer.t_slider.value = 0.9
    assert "t = 0.90" in explorer.readout.value and bytes(explorer.image.value) != image
    readout, image = explorer.readout.value, bytes(explorer.image.value)
    explorer.a_slider.value = 5
    assert "A = test image #5 (a 5)" in explorer.readout.value
    assert explorer.readout.value != readout and bytes(explorer.image.value) != image


def test_interpolation_paths_are_straight_lines_decoded(tiny_sweep):
    explorer = maps.InterpolationExplorer(tiny_sweep)
    paths = explorer.paths(5, 8)
    x_a, x_b = tiny_sweep.test_images[5], tiny_sweep.test_images[8]
    assert explorer.frames == 21 and all(p.shape == (21, 1, 28, 28) for p in paths.values())
    torch.testing.assert_close(paths["pixels"][0], x_a)
    torch.testing.assert_close(paths["pixels"][-1], x_b)
    torch.testing.assert_close(paths["pixels"][5], 0.75 * x_a + 0.25 * x_b)
    for name, entry in (("AE", tiny_sweep.ae(16)), ("VAE", tiny_sweep.vae(16, 1.0))):
        with torch.no_grad():
            z = entry.model.encode(torch.stack([x_a, x_b]))
            z = z[0] if isinstance(z, tuple) else z  # the VAE's mu
            torch.testing.assert_close(paths[name][10], entry.model.decode(z.mean(0, keepdim=True))[0])
            torch.testing.assert_close(paths[name][0], entry.model.decode(z[:1])[0])


def test_interpolation_explorer_without_an_ae_says_so(tiny_sweep):
    explorer = maps.InterpolationExplorer(tiny_sweep, latent_dim=2)
    assert "lacks the AE" in explorer.readout.value


def test_static_figures_are_plain_matplotlib(tiny_sweep):
    for cls in (explorers.SweepExplorer, maps.LatentMapExplorer, maps.InterpolationExplorer):
        explorer = cls(tiny_sweep)
        for slider in explorer.sliders:  # the static figure ignores where the sliders are now
            if isinstance(slider, widgets.FloatSlider):
                slider.value = slider.max
        fig = explorer.static_figure()
        assert isinstance(fig, Figure) and len(fig.axes) >= 3
        plt.close(fig)


def test_measure_redraws_moves_every_slider_and_puts_it_back(tiny_sweep):
    explorer = maps.InterpolationExplorer(tiny_sweep)
    start = [slider.value for slider in explorer.sliders]
    seconds = explorers.measure_redraws(explorer, moves_per_slider=3)
    assert len(seconds) == 3 * len(explorer.sliders) and all(s > 0 for s in seconds)
    assert [slider.value for slider in explorer.sliders] == start


# --- what the figures show, checked against the sweep's own tensors -------------------------------------------


def test_sweep_explorer_shows_the_models_images_numbers_and_place_on_the_rate_distortion_plot(tiny_sweep):
    explorer = explorers.SweepExplorer(tiny_sweep, latent_dim=2, beta=0.5)
    entry, artists = tiny_sweep.vae(2, 0.5), explorer._artists
    originals = tiny_sweep.test_images[tiny_sweep.shown]
    expected = explorers.grid_array(torch.cat([originals, entry.reconstructions]), nrow=10)
    assert np.array_equal(artists["recon"].get_array(), expected)
    assert np.array_equal(artists["prior"].get_array(), explorers.grid_array(entry.prior_samples, nrow=10))
    assert artists["recon"].get_clim() == (0, 1) and artists["recon"].get_cmap().name == "gray"
    m = entry.metrics
    assert list(artists["current"].get_data()[0]) == [m["kl"]]
    assert list(artists["current"].get_data()[1]) == [m["distortion"]]
    readout = explorer.readout.value
    for text in (f"MSE {m['mse']:.4f} per pixel", f"distortion D {m['distortion']:.1f} nats (sampled z",
                 f"{m['bce']:.1f} at z = mu", f"rate R = KL {m['kl']:.2f} nats",
                 f"negative ELBO D + R {m['neg_elbo']:.1f} nats", f"active units {int(m['active_units_cov'])} of 2",
                 f"{int(m['active_units'])} by KL > 0.01 nats"):
        assert text in readout
    assert all(label.get_visible() for label in artists["row_labels"]) and artists["missing"].get_text() == ""
    # one line per latent dimension, beta increasing along it: (rate, distortion) = the evaluate() keys "kl" and
    # "distortion" (sampled z) of each trained VAE
    ax_rd = explorer.fig.axes[2]
    lines = {line.get_label(): line for line in ax_rd.get_lines()}
    by_beta = [tiny_sweep.vae(2, b).metrics for b in (0.5, 1.0)]
    assert list(lines["latent 2"].get_xdata()) == [m["kl"] for m in by_beta]
    assert list(lines["latent 2"].get_ydata()) == [m["distortion"] for m in by_beta]
    assert list(lines["latent 16"].get_xdata()) == [tiny_sweep.vae(16, 1.0).metrics["kl"]]
    assert list(lines["latent 16"].get_ydata()) == [tiny_sweep.vae(16, 1.0).metrics["distortion"]]
    assert "sampled z" in ax_rd.get_ylabel() and "nats / image" in ax_rd.get_xlabel()
    # the shown dimension's line is drawn again on top, its points labelled with their betas
    assert list(artists["shown_curve"].get_xdata()) == [m["kl"] for m in by_beta]
    labels = [label for label in artists["beta_labels"] if label.get_text()]
    assert [label.get_text() for label in labels] == ["β=0.5", "β=1"]
    assert [label.xy for label in labels] == [(m["kl"], m["distortion"]) for m in by_beta]
    kls = [e.metrics["kl"] for e in tiny_sweep.vaes.values()]
    assert ax_rd.get_xscale() == ("log" if max(kls) / min(kls) > 30 else "linear")


def test_sweep_explorer_blanks_the_panels_where_no_model_is(tiny_sweep):
    explorer = explorers.SweepExplorer(tiny_sweep, latent_dim=32, beta=4.0)
    artists = explorer._artists
    assert (artists["recon"].get_array() == 1).all() and (artists["prior"].get_array() == 1).all()
    assert not any(label.get_visible() for label in artists["row_labels"])
    assert list(artists["current"].get_data()[0]) == [] and list(artists["shown_curve"].get_xdata()) == []
    assert not any(label.get_text() for label in artists["beta_labels"])
    assert "No model trained at latent dimension 32, beta 4." in artists["missing"].get_text()
    assert "This run has latent {2, 16} x beta {0.5, 1}." in artists["missing"].get_text()
    assert f"(3 of {6 * 9} grid positions)" in explorer.readout.value


def test_sweep_explorer_starts_at_the_first_trained_position_without_latent_16_beta_1(tiny_sweep):
    sweep = latent_sweep.Sweep.from_models([(_model("vae", 2, 1), BetaVAEObjective(0.5)),
                                            (_model("vae", 3, 1), BetaVAEObjective(0.25))],
                                           tiny_sweep.test_images, tiny_sweep.test_labels)
    explorer = explorers.SweepExplorer(sweep)
    assert (explorer.latent_slider.value, explorer.beta_slider.value) == (2, 0.5)
    with pytest.raises(ValueError, match="no VAE to explore"):
        explorers.SweepExplorer(latent_sweep.Sweep.from_models([(_model("ae", 2, 1), MSEObjective())],
                                                               tiny_sweep.test_images, tiny_sweep.test_labels))


def test_latent_map_grid_puts_each_decoding_at_its_coordinates(tiny_sweep):
    explorer = maps.LatentMapExplorer(tiny_sweep, limit=2.0, grid_size=5)
    model = tiny_sweep.vae(2, 1.0).model
    tiles = explorer.grid_images

    def tile(row, col):
        return tiles[2 + 30 * row : 30 + 30 * row, 2 + 30 * col : 30 + 30 * col]

    for (row, col), (z1, z2) in {(0, 0): (-2, 2), (0, 4): (2, 2), (4, 0): (-2, -2), (2, 3): (1, 0)}.items():
        assert np.allclose(tile(row, col), decode(model, torch.tensor([[z1, z2]], dtype=torch.float32))[0, 0].numpy(),
                           atol=1e-6), (row, col)
    ax_map, ax_grid = explorer.fig.axes[0], explorer.fig.axes[2]
    assert ax_grid.images[0].get_extent() == [-2.5, 2.5, -2.5, 2.5]  # tile centres at -2, -1, ..., 2
    codes = tiny_sweep.vae(2, 1.0).test_codes
    reach = max(2.0, codes.abs().max().item()) * 1.05
    assert ax_map.get_xlim() == pytest.approx((-reach, reach)) and ax_map.get_ylim() == pytest.approx((-reach, reach))
    points = np.concatenate([c.get_offsets() for c in ax_map.collections])
    assert len(points) == len(codes) and len(ax_map.collections) == 10  # one colour per digit


def test_latent_map_decodes_and_marks_the_slider_point(tiny_sweep):
    explorer = maps.LatentMapExplorer(tiny_sweep)
    explorer.z1_slider.value, explorer.z2_slider.value = -1.2, 0.7
    model, artists = tiny_sweep.vae(2, 1.0).model, explorer._artists
    expected = decode(model, torch.tensor([[-1.2, 0.7]]))[0, 0].numpy()
    assert np.allclose(artists["decoded"].get_array(), expected)
    for marker in ("map_marker", "grid_marker"):
        assert [list(v) for v in artists[marker].get_data()] == [[-1.2], [0.7]]
    codes, labels = tiny_sweep.vae(2, 1.0).test_codes, tiny_sweep.test_labels
    distances = ((codes - torch.tensor([-1.2, 0.7])) ** 2).sum(1).sqrt()
    index = int(distances.argmin())
    assert explorer.nearest(-1.2, 0.7) == (index, int(labels[index]), pytest.approx(distances[index].item(), rel=1e-5))
    assert f"a <b>{int(labels[index])}</b> (test image #{index}, distance {distances[index]:.2f})" in (
        explorer.readout.value)
    assert "decoded at\nz = (-1.2, 0.7)" == artists["dec_title"].get_text()


def test_latent_map_explorer_with_a_chosen_beta_or_no_2d_model(tiny_sweep):
    assert maps.LatentMapExplorer(tiny_sweep, beta=0.5).entry is tiny_sweep.vae(2, 0.5)
    assert maps.LatentMapExplorer(tiny_sweep).entry is tiny_sweep.vae(2, 1.0)
    only_half = latent_sweep.Sweep.from_models([(_model("vae", 2, 1), BetaVAEObjective(0.5))],
                                               tiny_sweep.test_images, tiny_sweep.test_labels)
    assert maps.LatentMapExplorer(only_half).entry is only_half.vae(2, 0.5)  # the 2-D VAE it has
    missing = maps.LatentMapExplorer(tiny_sweep, latent_dim=16)
    assert "No 2-D VAE (latent dimension 2, beta 1)" in missing.readout.value and missing.widget is missing.readout


def test_interpolation_explorer_shows_every_second_frame_and_the_one_at_t(tiny_sweep):
    explorer = maps.InterpolationExplorer(tiny_sweep, index_a=5, index_b=8, steps=6)
    assert explorer.frames == 11 and explorer.t_slider.step == pytest.approx(0.1)
    explorer.t_slider.value = 0.3
    paths, artists = explorer.paths(5, 8), explorer._artists
    for name in ("pixels", "AE", "VAE"):
        assert np.array_equal(artists["strips"][name].get_array(), explorers.grid_array(paths[name][::2], nrow=6))
        assert np.array_equal(artists["now"][name].get_array(), paths[name][3, 0].numpy())  # frame 0.3 * 10
    assert all(list(line.get_xdata()) == [0.3, 0.3] for line in artists["lines"])
    assert artists["now_title"].get_text() == "at t = 0.30"
    ae, vae = tiny_sweep.ae(16).test_codes, tiny_sweep.vae(16, 1.0).test_codes
    readout = explorer.readout.value
    assert f"AE {(ae[8] - ae[5]).norm():.2f}, VAE {(vae[8] - vae[5]).norm():.2f}" in readout
    assert "A = test image #5 (a 5), B = test image #8 (a 8), t = 0.30" in readout
    assert explorer.paths(5, 8) is paths and explorer.paths(8, 5)["pixels"][0].equal(paths["pixels"][-1])
    assert explorer.b_slider.max == 39 and explorer.a_slider.min == 0


def test_interpolation_explorer_defaults_and_what_it_lacks(tiny_sweep):
    labels = torch.tensor([1, 2] * 20)  # no 3 and no 8: the first and the last image
    sweep = latent_sweep.Sweep.from_models([(_model("vae", 16, 3), BetaVAEObjective(1.0)),
                                            (_model("ae", 16, 4), MSEObjective())], tiny_sweep.test_images, labels)
    explorer = maps.InterpolationExplorer(sweep)
    assert (explorer.a_slider.value, explorer.b_slider.value) == (0, 39)
    no_vae = maps.InterpolationExplorer(tiny_sweep, beta=4.0)
    assert "this sweep lacks the VAE" in no_vae.readout.value and "beta 4" in no_vae.readout.value
    neither = maps.InterpolationExplorer(tiny_sweep, latent_dim=3)
    assert "lacks the AE and the VAE" in neither.readout.value


def test_explorer_plumbing_redraws_on_every_slider_and_records_the_time(tiny_sweep):
    explorer = explorers.SweepExplorer(tiny_sweep)
    assert len(explorer.redraw_seconds) == 1  # the first drawing
    explorer.beta_slider.value = 0.5
    explorer.latent_slider.value = 2
    assert len(explorer.redraw_seconds) == 3 and all(s > 0 for s in explorer.redraw_seconds)
    assert explorer.widget.children == (explorer.widget.children[0], explorer.readout, explorer.image)
    assert "sweep-explorer" in explorer.widget._dom_classes
    assert "sweep-explorer-readout" in explorer.readout._dom_classes
    assert "sweep-explorer-image" in explorer.image._dom_classes
    png = bytes(explorer.image.value)
    assert PIL.Image.open(io.BytesIO(png)).size == (int(10.5 * explorers.DPI), int(4.3 * explorers.DPI))


def test_interpolation_sliders_span_the_test_set_and_the_frames(tiny_sweep):
    explorer = maps.InterpolationExplorer(tiny_sweep, steps=6)
    a, b, t = explorer.sliders
    assert (a.min, a.max, b.min, b.max) == (0, 39, 0, 39)
    assert (t.value, t.min, t.max, t.step) == (0.5, 0.0, 1.0, pytest.approx(0.1))
    assert [s._dom_classes for s in (a, b, t)] == [("interp-a-slider",), ("interp-b-slider",), ("interp-t-slider",)]
    controls = explorer.widget.children[0]
    assert controls.children[0].children == (a, b) and controls.children[1] is t
    assert "interpolation-explorer" in explorer.widget._dom_classes
    png = PIL.Image.open(io.BytesIO(bytes(explorer.image.value)))
    assert png.size == (int(10.5 * explorers.DPI), int(3.6 * explorers.DPI))


def test_interpolation_frame_and_texts_follow_t(tiny_sweep):
    explorer = maps.InterpolationExplorer(tiny_sweep, index_a=5, index_b=8, steps=11)
    explorer.t_slider.value = 0.9
    paths = explorer.paths(5, 8)
    assert np.array_equal(explorer._artists["now"]["VAE"].get_array(), paths["VAE"][18, 0].numpy())  # 0.9 * 20
    assert explorer._artists["suptitle"].get_text() == (
        "from test image #5 (a 5) to test image #8 (a 8): straight lines in three spaces")
    assert explorer.readout.value.endswith("(each in its own latent units).")


def test_interpolation_defaults_without_a_3_or_an_8(tiny_sweep):
    labels = torch.tensor([4, 9] * 20)  # a 4 and a 9, but no 3 and no 8: the first and the last image
    sweep = latent_sweep.Sweep.from_models([(_model("vae", 16, 3), BetaVAEObjective(1.0)),
                                            (_model("ae", 16, 4), MSEObjective())], tiny_sweep.test_images, labels)
    explorer = maps.InterpolationExplorer(sweep)
    assert (explorer.a_slider.value, explorer.b_slider.value) == (0, 39)
    lacking = maps.InterpolationExplorer(tiny_sweep, latent_dim=2)
    assert "interpolation-explorer-readout" in lacking.readout._dom_classes


def test_latent_map_sliders_and_classes(tiny_sweep):
    explorer = maps.LatentMapExplorer(tiny_sweep, limit=2.5)
    for slider, name in zip(explorer.sliders, ("z1", "z2")):
        assert (slider.value, slider.min, slider.max, slider.step, slider.description) == (0.0, -2.5, 2.5, 0.1, name)
        assert slider._dom_classes == (f"{name}-slider",)
    assert "latent-map-explorer" in explorer.widget._dom_classes
    assert "No 2-D VAE" not in explorer.readout.value
    missing = maps.LatentMapExplorer(tiny_sweep, beta=3.0)
    assert missing.readout.value == (
        "<p style='color:#a00'><b>No 2-D VAE (latent dimension 2, beta 3) in this sweep: train one first (it is part "
        "of the sweep in every mode).</b></p>")
    assert "latent-map-explorer-readout" in missing.readout._dom_classes


def test_sweep_explorer_panels_sit_where_the_text_says(tiny_sweep):
    explorer = explorers.SweepExplorer(tiny_sweep, latent_dim=32, beta=4.0)  # no model: the blank panels
    ax_recon, ax_prior, ax_rd = explorer.fig.axes[:3]
    recon, prior, rd = (ax.get_position(original=True) for ax in (ax_recon, ax_prior, ax_rd))  # the grid cells
    assert recon.y0 > prior.y1 and recon.x0 == pytest.approx(prior.x0)  # reconstructions above prior samples
    assert rd.x0 > max(recon.x1, prior.x1) and rd.y0 == pytest.approx(prior.y0)  # the plot on the right, full height
    blank = explorer._artists["recon"].get_array()
    explorer.latent_slider.value, explorer.beta_slider.value = 2, 1.0
    assert blank.shape == explorer._artists["recon"].get_array().shape  # a blank panel is as big as a full one
    assert explorer._artists["prior"].get_interpolation() == "nearest"
    assert explorer._artists["prior"].get_clim() == (0, 1) and explorer._artists["prior"].get_cmap().name == "gray"


def test_measure_redraws_of_selection_sliders_and_its_default(tiny_sweep):
    explorer = explorers.SweepExplorer(tiny_sweep)
    seconds = explorers.measure_redraws(explorer, moves_per_slider=2)
    assert len(seconds) == 4 and (explorer.latent_slider.value, explorer.beta_slider.value) == (16, 1.0)
    interpolation = maps.InterpolationExplorer(tiny_sweep)
    assert len(explorers.measure_redraws(interpolation)) == 3 * 6


def test_static_figure_has_the_explorers_size(tiny_sweep):
    fig = maps.InterpolationExplorer(tiny_sweep).static_figure()
    assert tuple(fig.get_size_inches()) == pytest.approx((10.5, 3.6))
    plt.close(fig)


def test_interpolation_strips_put_each_frame_at_its_t(tiny_sweep):
    """The strips are as wide as t runs, half a tile more on each side: the frame at t = k / (steps - 1) sits over
    the tick at t."""
    explorer = maps.InterpolationExplorer(tiny_sweep, steps=6)
    for name in ("pixels", "AE", "VAE"):
        strip, now = explorer._artists["strips"][name], explorer._artists["now"][name]
        assert strip.get_extent() == pytest.approx([-0.1, 1.1, 0, 1]) and strip.axes.get_aspect() == "auto"
        assert strip.get_clim() == now.get_clim() == (0, 1) and strip.get_cmap().name == now.get_cmap().name == "gray"
        assert strip.get_interpolation() == now.get_interpolation() == "nearest"
        assert strip.axes.get_position(original=True).x1 < now.axes.get_position(original=True).x0  # strip, then now
    assert explorer._artists["now_title"].axes is explorer._artists["now"]["pixels"].axes  # over the top right image


def test_latent_map_draws_codes_square_and_images_on_a_fixed_grey_scale(tiny_sweep):
    explorer = maps.LatentMapExplorer(tiny_sweep, limit=0.05, grid_size=3)  # codes reach beyond this small square
    ax_map = explorer.fig.axes[0]
    codes, labels = tiny_sweep.vae(2, 1.0).test_codes.numpy(), tiny_sweep.test_labels.numpy()
    for digit, collection in enumerate(ax_map.collections):
        assert np.allclose(collection.get_offsets(), codes[labels == digit])
    assert [t.get_text() for t in ax_map.get_legend().get_texts()] == [str(d) for d in range(10)]
    reach = np.abs(codes).max() * 1.05
    assert ax_map.get_xlim() == pytest.approx((-reach, reach))
    (square,) = [line for line in ax_map.get_lines() if len(line.get_xdata()) == 5]
    corners = {(round(x, 6), round(y, 6)) for x, y in zip(square.get_xdata(), square.get_ydata())}
    assert corners == {(-0.05, -0.05), (-0.05, 0.05), (0.05, 0.05), (0.05, -0.05)}  # the square the grid decodes
    decoded, grid = explorer._artists["decoded"], explorer.fig.axes[2].images[0]
    for image in (decoded, grid):
        assert image.get_clim() == (0, 1) and image.get_cmap().name == "gray"
    assert decoded.get_interpolation() == "nearest"


def test_latent_map_default_beta_without_beta_1_is_the_largest(tiny_sweep):
    sweep = latent_sweep.Sweep.from_models([(_model("vae", 2, 1), BetaVAEObjective(0.25)),
                                            (_model("vae", 2, 2), BetaVAEObjective(2.0))],
                                           tiny_sweep.test_images, tiny_sweep.test_labels)
    assert maps.LatentMapExplorer(sweep).entry is sweep.vae(2, 2.0)
    none = latent_sweep.Sweep.from_models([(_model("vae", 3, 1), BetaVAEObjective(0.25))], tiny_sweep.test_images,
                                          tiny_sweep.test_labels)
    assert "beta 1)" in maps.LatentMapExplorer(none).readout.value  # no 2-D model at all: it says beta 1
    explorer = maps.LatentMapExplorer(tiny_sweep)
    assert explorer.limit == 3.0 and explorer.grid_images.shape == (15 * 30 + 2, 15 * 30 + 2)
    png = PIL.Image.open(io.BytesIO(bytes(explorer.image.value)))
    assert png.size == (int(10.5 * explorers.DPI), int(3.7 * explorers.DPI))


def _boxes(places, points, sizes):
    boxes = []
    for ((dx, dy), ha, va), (x, y), (w, h) in zip(places, points, sizes):
        x0 = x + dx - {"right": w, "center": w / 2, "left": 0}[ha]
        y0 = y + dy - (h if va == "top" else 0)
        boxes.append((x0, y0, x0 + w, y0 + h))
    return boxes


def test_place_labels_keeps_the_labels_of_a_flat_crowded_line_apart():
    """Five points 10 points apart on a flat line, labels 22 x 9 points (a flat stretch of the 2-D VAE's line): no
    two label boxes overlap, no label covers a point, and a lone point gets the first choice (below left)."""
    points = [(100.0 + 10 * i, 100.0) for i in range(5)]
    sizes = [(22.0, 9.0)] * 5
    dots = [(x - 4, y - 4, x + 4, y + 4) for x, y in points]
    boxes = _boxes(explorers.place_labels(points, sizes, dots), points, sizes)
    for i, a in enumerate(boxes):
        assert all(explorers._overlap(a, dot) == 0 for dot in dots)
        assert all(explorers._overlap(a, b) == 0 for b in boxes[i + 1:])
    assert explorers.place_labels([(50.0, 50.0)], [(20.0, 8.0)]) == [explorers.LABEL_PLACES[0]]
    # inside the bounds: a point in the lower left corner gets its label above right
    place = explorers.place_labels([(2.0, 2.0)], [(20.0, 8.0)], bounds=(0.0, 0.0, 200.0, 200.0))
    assert place == [((5, 5), "left", "bottom")]
    assert explorers._overlap((0, 0, 2, 3), (1, 1, 5, 5)) == 2 and explorers._overlap((0, 0, 1, 1), (2, 2, 3, 3)) == 0


# (rate, distortion) in nats per image of a reference run: latent 2 (a flat, crowded line) and 16 (a steep one)
REFERENCE_POINTS = {
    2: [(43.1, 155.9), (12.91, 156.5), (8.89, 156.6), (6.6, 159.2), (5.49, 159.7), (4.26, 161.3), (3.12, 167.4),
        (1.91, 177.9), (0.58, 197.7)],
    16: [(427.98, 101.9), (44.15, 103.8), (29.03, 109.1), (20.23, 113.8), (11.82, 124.9), (8.39, 134.6),
         (5.34, 147.5), (1.73, 182.1), (0.44, 200.8)],
}


def test_the_beta_labels_of_the_shown_line_do_not_overlap_on_the_figure(tiny_sweep):
    """With the whole grid's betas and a reference run's rate-distortion values, no two beta labels of the shown
    line overlap, whichever model of it is shown."""
    models, metrics = [], []
    for d, points in REFERENCE_POINTS.items():
        for beta, (rate, distortion) in zip(latent_sweep.BETAS, points):
            models.append((_model("vae", d, 0), BetaVAEObjective(beta)))
            metrics.append({"kl": rate, "distortion": distortion, "bce": distortion, "mse": 0.03,
                            "neg_elbo": rate + distortion, "active_units_cov": d, "active_units": d})
    sweep = latent_sweep.Sweep.from_models(models, tiny_sweep.test_images[:12], tiny_sweep.test_labels[:12],
                                           metrics)  # fmt: skip
    for d in REFERENCE_POINTS:
        for beta in (0.0, 1.0, 16.0):
            explorer = explorers.SweepExplorer(sweep, latent_dim=d, beta=beta)
            renderer = explorer.canvas.get_renderer()
            labels = [label for label in explorer._artists["beta_labels"] if label.get_text()]
            assert len(labels) == len(latent_sweep.BETAS)
            boxes = [label.get_window_extent(renderer) for label in labels]
            for i, box in enumerate(boxes):
                assert not any(box.overlaps(other) for other in boxes[i + 1:]), (d, beta, labels[i].get_text())


def test_unit_activity_plot_draws_both_definitions_per_beta_sorted_by_variance(tiny_sweep):
    fig = explorers.plot_unit_activity(tiny_sweep, 2)
    ax_var, ax_kl = fig.axes[:2]
    for ax in (ax_var, ax_kl):
        assert ax.get_yscale() == "log" and "nats" in ax_kl.get_ylabel()
        threshold = [line for line in ax.get_lines() if line.get_label() == "threshold 0.01"]
        assert len(threshold) == 1 and list(threshold[0].get_ydata()) == [0.01, 0.01]
    curves = [line for line in ax_var.get_lines() if line.get_label().startswith("β")]
    assert [line.get_label() for line in curves] == [
        f"β = {b:g}: {int(tiny_sweep.vae(2, b).metrics['active_units_cov'])} active" for b in (0.5, 1.0)]
    for line, beta in zip(curves, (0.5, 1.0)):
        entry = tiny_sweep.vae(2, beta)
        order = torch.argsort(entry.unit_variance, descending=True)
        np.testing.assert_allclose(line.get_ydata(), entry.unit_variance[order].clamp_min(1e-6).numpy())
        assert list(line.get_xdata()) == [1, 2]  # ranks, largest variance first
    kl_curves = [line for line in ax_kl.get_lines() if line.get_label().startswith("β")]
    entry = tiny_sweep.vae(2, 1.0)
    order = torch.argsort(entry.unit_variance, descending=True)
    np.testing.assert_allclose(kl_curves[1].get_ydata(), entry.unit_kl[order].clamp_min(1e-6).numpy())
    assert ax_var.get_ylim() == ax_kl.get_ylim()
    plt.close(fig)
    fig = explorers.plot_unit_activity(tiny_sweep, 2, betas=[1.0])
    assert len([line for line in fig.axes[0].get_lines() if line.get_label().startswith("β")]) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="no VAE of latent dimension 2 at beta 4"):
        explorers.plot_unit_activity(tiny_sweep, 2, betas=[1.0, 4.0])
    with pytest.raises(ValueError, match="latent dimension 32"):
        explorers.plot_unit_activity(tiny_sweep, 32)
