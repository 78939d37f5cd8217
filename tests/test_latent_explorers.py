"""Lesson 05's explorers (course_lib.experiments.latent_explorers and latent_map_explorers), headless."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

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
