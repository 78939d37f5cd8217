"""The latent-space explorers (course_lib.widgets) and the cached sweep (course_lib.sweep), headless."""

from __future__ import annotations

import statistics

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib import sweep as sweep_module  # noqa: E402
from course_lib import widgets as explorers  # noqa: E402
from course_lib.data import Dataset  # noqa: E402
from course_lib.models import ModelConfig, build_model  # noqa: E402

PNG_MAGIC = b"\x89PNG"


def _model(kind: str, latent_dim: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind, latent_dim, (32,), (32,)))


@pytest.fixture(scope="module")
def tiny_sweep() -> sweep_module.Sweep:
    """Untrained small models at three grid positions, a 40-image test set with every digit."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 28, 28, generator=generator)
    labels = torch.arange(40) % 10
    vaes = {(2, 1.0): _model("vae", 2, 1), (2, 0.5): _model("vae", 2, 2), (16, 1.0): _model("vae", 16, 3)}
    aes = {16: _model("ae", 16, 4)}
    return sweep_module.Sweep.from_models(vaes, aes, images, labels)


def test_sweep_precomputes_what_the_explorers_show(tiny_sweep):
    entry = tiny_sweep.vae(2, 1.0)
    assert entry.test_codes.shape == (40, 2)
    assert entry.reconstructions.shape == (sweep_module.N_SHOWN, 1, 28, 28)
    assert entry.prior_samples.shape == (2 * sweep_module.N_SHOWN, 1, 28, 28)
    assert {"mse", "kl", "neg_elbo", "active_units"} <= set(entry.metrics)
    assert tiny_sweep.vae(3, 0.1) is None
    assert tiny_sweep.ae(16).prior_samples is None
    assert "VAE latent 16, beta 1" in tiny_sweep.table()


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
    assert [v for _, v in explorer.latent_slider.options] == list(sweep_module.LATENT_DIMS)
    assert [v for _, v in explorer.beta_slider.options] == list(sweep_module.BETAS)


def test_latent_map_explorer_decodes_the_slider_point(tiny_sweep):
    explorer = explorers.LatentMapExplorer(tiny_sweep)
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
    explorer = explorers.LatentMapExplorer(tiny_sweep, beta=4.0)
    assert "No 2-D VAE" in explorer.readout.value
    assert isinstance(explorer.widget, explorers.widgets.HTML)


def test_interpolation_explorer_moves_along_the_path(tiny_sweep):
    explorer = explorers.InterpolationExplorer(tiny_sweep)
    assert (explorer.a_slider.value, explorer.b_slider.value) == (3, 8)  # first 3 and first 8 in the labels
    readout, image = explorer.readout.value, bytes(explorer.image.value)
    explorer.t_slider.value = 0.9
    assert "t = 0.90" in explorer.readout.value and bytes(explorer.image.value) != image
    readout, image = explorer.readout.value, bytes(explorer.image.value)
    explorer.a_slider.value = 5
    assert "A = test image #5 (a 5)" in explorer.readout.value
    assert explorer.readout.value != readout and bytes(explorer.image.value) != image
    ends = explorer._paths(5, 8, torch.tensor([0.0, 1.0]))
    assert torch.allclose(ends["pixels"][0], tiny_sweep.test_images[5])
    assert torch.allclose(ends["pixels"][1], tiny_sweep.test_images[8])


def test_interpolation_explorer_without_an_ae_says_so(tiny_sweep):
    explorer = explorers.InterpolationExplorer(tiny_sweep, latent_dim=2)
    assert "lacks the AE" in explorer.readout.value


def test_static_figures_are_plain_matplotlib(tiny_sweep):
    for cls in (explorers.SweepExplorer, explorers.LatentMapExplorer, explorers.InterpolationExplorer):
        explorer = cls(tiny_sweep)
        for slider in explorer.sliders:  # the static figure ignores where the sliders are now
            if isinstance(slider, explorers.widgets.FloatSlider):
                slider.value = slider.max
        fig = explorer.static_figure()
        assert isinstance(fig, Figure) and len(fig.axes) >= 3
        plt.close(fig)


def test_a_slider_move_redraws_within_half_a_second(tiny_sweep):
    """The figures are as large as in the notebook; only the models are smaller (decoding is not the cost)."""
    timings = []
    for cls in (explorers.SweepExplorer, explorers.LatentMapExplorer, explorers.InterpolationExplorer):
        explorer = cls(tiny_sweep)
        seconds = explorers.measure_redraws(explorer, moves_per_slider=4)
        assert seconds, cls.__name__
        timings += seconds
    print(f"redraw: median {statistics.median(timings):.3f} s, max {max(timings):.3f} s over {len(timings)} moves")
    assert statistics.median(timings) < 0.5


def test_sweep_trains_once_then_loads_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(60, 1, 28, 28, generator=generator)
    labels = torch.arange(60) % 10
    data = Dataset("mnist-5k", images[:40], labels[:40], images[40:], labels[40:], "random test images")
    spec = sweep_module.SweepSpec(
        "mnist-5k", (2,), (1.0,), ae_latent_dims=(2,), epochs=1, batch_size=20, encoder_widths=(16,),
        decoder_widths=(16,),
    )
    first = sweep_module.train_or_load(spec, data, progress=False, verbose=False)
    assert spec.path("vae", 2, 1.0).exists() and spec.path("ae", 2).exists()
    assert spec.folder.is_relative_to(tmp_path)
    assert all(" trained " in line for line in first.log)
    second = sweep_module.train_or_load(spec, data, progress=False, verbose=False)
    assert all(" loaded " in line for line in second.log)
    assert second.vae(2, 1.0).metrics == pytest.approx(first.vae(2, 1.0).metrics)
    torch.testing.assert_close(second.vae(2, 1.0).test_codes, first.vae(2, 1.0).test_codes)
    with pytest.raises(ValueError, match="sweep spec is for"):
        sweep_module.train_or_load(spec.__class__("mnist", (2,), (1.0,)), data, verbose=False)
