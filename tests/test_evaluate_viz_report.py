"""course_lib.evaluate, viz and report, checked against independent computations."""

import pytest
import torch

from course_lib.evaluate import decode, encode, evaluate, interpolate, reconstruct, sample_prior, unit_activity
from course_lib.models import ModelConfig, build_model
from course_lib.report import table
from course_lib.train import History
from course_lib.viz import comparison_figure, grid_array, image_grid, plot_class_histograms, plot_history


def test_sample_prior_decodes_standard_normal_draws():
    torch.manual_seed(0)
    vae = build_model(ModelConfig("vae", 3, (16,), (16,)))
    z = torch.randn(7, 3, generator=torch.Generator().manual_seed(5))
    expected = vae.eval().decode(z)
    assert torch.allclose(sample_prior(vae, 7, seed=5), expected)
    assert not torch.allclose(sample_prior(vae, 7, seed=6), expected)


def test_decode_batches_and_reconstruct_goes_through_the_mean(mnist5k):
    torch.manual_seed(0)
    vae = build_model(ModelConfig("vae", 4, (32,), (32,)))
    x = mnist5k.test_images[::40]
    mu, _ = vae.eval().encode(x)
    assert torch.allclose(encode(vae, x), mu)
    assert torch.allclose(decode(vae, mu, batch_size=7), vae.decode(mu), atol=1e-6)
    assert torch.allclose(reconstruct(vae, x, batch_size=3), vae.decode(mu), atol=1e-6)
    assert vae.training is False


def test_interpolate_endpoints_and_midpoint():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    path = interpolate(a, b, 5)
    assert path.shape == (2, 5, 3)
    assert torch.equal(path[:, 0], a) and torch.equal(path[:, -1], b)
    assert torch.allclose(path[:, 1], torch.full((2, 3), 0.25))
    assert torch.allclose(path[:, 2], torch.full((2, 3), 0.5))
    with pytest.raises(ValueError):
        interpolate(a, b, 1)
    with pytest.raises(ValueError):
        interpolate(a, torch.ones(2, 4), 3)


def test_decode_and_sample_prior_shapes_and_seeding():
    torch.manual_seed(0)
    for kind in ("ae", "vae"):
        model = build_model(ModelConfig(kind, 4, (16,), (16,)))
        images = decode(model, torch.zeros(3, 4))
        assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
        samples = sample_prior(model, 5, seed=1)
        assert samples.shape == (5, 1, 28, 28)
        assert torch.equal(samples, sample_prior(model, 5, seed=1))
        z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert torch.allclose(samples, model.eval().decode(z))


def test_grid_array_places_each_image_in_its_tile():
    images = torch.stack([torch.full((1, 4, 4), v) for v in (0.0, 0.25, 0.75, 1.0, 0.5)])
    tiles = grid_array(images, nrow=3, pad=2, pad_value=0.5)
    assert tiles.shape == (2 + 2 * 6, 2 + 3 * 6)
    for i, value in enumerate((0.0, 0.25, 0.75, 1.0, 0.5)):
        row, col = divmod(i, 3)
        assert (tiles[2 + 6 * row : 6 + 6 * row, 2 + 6 * col : 6 + 6 * col] == value).all()
    fig = image_grid(images, nrow=3, row_labels=["a", "b"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]


def test_table_aligns_text_and_writes_markdown():
    rows = [{"name": "AE", "mse": 0.01234, "note": "a|b"}, {"name": "VAE", "mse": None, "note": "c"}]
    columns = [("name", "model", "s"), ("mse", "MSE", ".3f"), ("note", "note", str)]
    text = table(rows, columns).splitlines()
    assert text[0].split() == ["model", "MSE", "note"] and text[2].split() == ["AE", "0.012", "a|b"]
    assert text[3].split() == ["VAE", "-", "c"] and len({len(line) for line in text}) == 1
    markdown = table(rows, columns, markdown=True).splitlines()
    assert markdown[0] == "| model | MSE | note |" and markdown[2] == "| AE | 0.012 | a\\|b |"


def _bce_by_hand(p, x):
    """Bernoulli -log p(x) summed over pixels, with PyTorch's clamp of each log at -100."""
    p, x = p.flatten(1), x.flatten(1)
    return -(x * p.log().clamp_min(-100) + (1 - x) * (1 - p).log().clamp_min(-100)).sum(1)


def test_evaluate_of_a_vae_recomputed_by_hand(mnist5k):
    """-ELBO at a sampled z (drawn with the same seeded generator) and at z = mu, KL, BCE, MSE and PSNR."""
    torch.manual_seed(0)
    vae = build_model(ModelConfig("vae", 4, (32,), (32,)))
    x = mnist5k.test_images[::50]
    metrics = evaluate(vae, x, seed=3)
    with torch.no_grad():
        mu, logvar = vae.eval().encode(x)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
        x_sampled, x_mean = vae.decode(mu + (0.5 * logvar).exp() * eps), vae.decode(mu)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
    mse = (x_mean - x).pow(2).flatten(1).mean(1)
    expected = {
        "kl": kl.mean(),
        "distortion": _bce_by_hand(x_sampled, x).mean(),
        "neg_elbo": (_bce_by_hand(x_sampled, x) + kl).mean(),
        "neg_elbo_z_mean": (_bce_by_hand(x_mean, x) + kl).mean(),
        "bce": _bce_by_hand(x_mean, x).mean(),
        "mse": mse.mean(),
        "psnr": (10 * torch.log10(1 / mse)).mean(),
    }
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value.item(), rel=1e-5), key
    assert metrics["neg_elbo"] != pytest.approx(metrics["neg_elbo_z_mean"], rel=1e-3)  # the draw matters
    # batches change nothing but the order of the draws
    again = evaluate(vae, x, batch_size=7, seed=3)
    for key in ("kl", "neg_elbo_z_mean", "bce", "mse", "psnr", "active_units_cov", "active_units"):
        assert again[key] == pytest.approx(metrics[key], rel=1e-5), key
    assert metrics["neg_elbo"] == pytest.approx(metrics["distortion"] + metrics["kl"], rel=1e-6)


def test_evaluate_of_an_ae_has_no_vae_metrics(mnist5k):
    torch.manual_seed(0)
    ae = build_model(ModelConfig("ae", 4, (32,), (32,)))
    x = mnist5k.test_images[::50]
    metrics = evaluate(ae, x, batch_size=6)
    with torch.no_grad():
        x_hat = ae.eval()(x)
    assert set(metrics) == {"mse", "psnr", "bce"}
    assert metrics["mse"] == pytest.approx((x_hat - x).pow(2).mean().item(), rel=1e-5)
    assert metrics["bce"] == pytest.approx(_bce_by_hand(x_hat, x).mean().item(), rel=1e-5)


def test_active_units_by_kl_count_the_units_whose_average_kl_exceeds_the_threshold(mnist5k):
    """Units that ignore the input with mu = 0, sigma = 1 carry no KL; a unit with KL 0.005 nats is below the 0.01
    threshold, one with 0.02 (mu = 0.2 for every image) above it; an unit active on half the images counts by its
    average. By the covariance definition only the input-dependent unit is active: a constant mu has no variance."""
    torch.manual_seed(0)
    vae = build_model(ModelConfig("vae", 6, (32,), (32,)))
    x = mnist5k.test_images[::25]  # 40 images
    with torch.no_grad():
        vae.fc_mu.weight[:5].zero_()
        vae.fc_logvar.weight.zero_()
        vae.fc_logvar.bias.zero_()
        vae.fc_mu.bias[:5] = torch.tensor([0.0, 0.0, 0.1, 0.2, 0.0])  # KL = mu^2 / 2: 0, 0, 0.005, 0.02, 0
        vae.fc_mu.bias[5] = 3.0  # unit 5 keeps its weights: input-dependent, large KL
        vae.fc_mu.weight[5] *= 10  # and a variance over the images well above 0.01
    metrics = evaluate(vae, x)
    assert metrics["active_units"] == 2.0 and metrics["active_units_cov"] == 1.0
    assert metrics["kl"] == pytest.approx(
        0.005 + 0.02 + 0.5 * (vae.eval().encode(x)[0][:, 5].detach() ** 2).mean().item(), rel=1e-4)
    with torch.no_grad():
        vae.fc_mu.bias[2] = 0.2  # now 0.02 nats: active
    assert evaluate(vae, x)["active_units"] == 3.0 and evaluate(vae, x)["active_units_cov"] == 1.0


@pytest.mark.parametrize("k", [0, 3, 8])
def test_active_units_by_covariance_miss_exactly_the_units_whose_mean_ignores_the_input(mnist5k, k):
    """An encoder whose mean ignores k of its 8 units (zero weights; any bias) has exactly 8 - k active units."""
    torch.manual_seed(1)
    vae = build_model(ModelConfig("vae", 8, (32,), (32,)))
    x = mnist5k.test_images[::25]
    with torch.no_grad():
        vae.fc_mu.weight[:k].zero_()
        vae.fc_mu.bias[:k] = torch.linspace(0.5, 2, k)  # constant, far from 0: a large KL, no variance
        vae.fc_mu.weight[k:] *= 10  # the others vary clearly with the input
    metrics = evaluate(vae, x, batch_size=7)
    assert metrics["active_units_cov"] == 8 - k
    units = unit_activity(vae, x, batch_size=9)
    with torch.no_grad():
        mu, logvar = vae.eval().encode(x)
    variance = ((mu - mu.mean(0)) ** 2).mean(0)  # by hand: divisor N
    torch.testing.assert_close(units["mean_variance"], variance, rtol=1e-4, atol=1e-10)
    torch.testing.assert_close(units["kl"], (0.5 * (mu**2 + logvar.exp() - logvar - 1)).mean(0), rtol=1e-5, atol=0)
    assert (units["mean_variance"][:k] < 1e-10).all() and (units["mean_variance"][k:] > 0.01).all()
    assert metrics["active_units_cov"] == (variance > 0.01).sum().item()
    assert metrics["active_units"] == (units["kl"] > 0.01).sum().item() == 8  # the KL sees the constant offsets


def test_both_definitions_agree_where_each_unit_is_either_ignored_or_used(mnist5k):
    """A synthetic posterior: units 0-2 collapsed to the prior (mu = 0, sigma = 1: no variance, no KL), units 3-5
    copy an input-dependent value with sigma = 0.5 (variance and KL both well above 0.01). Both counts say 3."""
    torch.manual_seed(2)
    vae = build_model(ModelConfig("vae", 6, (32,), (32,)))
    x = mnist5k.test_images[::25]
    with torch.no_grad():
        vae.fc_mu.weight[:3].zero_()
        vae.fc_mu.bias[:3].zero_()
        vae.fc_mu.weight[3:] *= 10
        vae.fc_logvar.weight.zero_()
        vae.fc_logvar.bias[:3] = 0.0
        vae.fc_logvar.bias[3:] = 2 * torch.log(torch.tensor(0.5))
    metrics = evaluate(vae, x)
    assert metrics["active_units_cov"] == metrics["active_units"] == 3.0
    units = unit_activity(vae, x)
    assert units["kl"][:3].abs().max() < 1e-6 and units["mean_variance"][:3].max() < 1e-10
    with pytest.raises(TypeError, match="VAE"):
        unit_activity(build_model(ModelConfig("ae", 2, (8,), (8,))), x)


def test_table_text_exactly():
    rows = [{"name": "AE", "x": 1.5}, {"name": "VAE long", "x": 12.25, "unused": 0}]
    text = table(rows, [("name", "model", "s"), ("x", "value", ".2f"), ("y", "y", ".1f")])
    assert text == "\n".join([
        "model     value  y",
        "--------  -----  -",
        "AE         1.50  -",
        "VAE long  12.25  -",
    ])
    markdown = table(rows, [("name", "model", "s"), ("x", "value", lambda v: f"{v:g}\nnext line")], markdown=True)
    assert markdown == "| model | value |\n|---|---|\n| AE | 1.5 next line |\n| VAE long | 12.25 next line |"


def test_comparison_figure_stacks_originals_ae_and_vae_rows():
    import matplotlib.pyplot as plt

    originals, ae, vae = (torch.full((10, 1, 28, 28), v) for v in (0.0, 0.5, 1.0))
    fig = comparison_figure(originals, ae, vae, title="t")
    ax = fig.axes[0]
    shown = ax.images[0].get_array()
    assert shown.shape == (2 + 3 * 30, 2 + 8 * 30)  # 8 columns, 3 rows of 28 + 2 pixels of padding
    for row, value in enumerate((0.0, 0.5, 1.0)):
        assert (shown[2 + 30 * row : 30 + 30 * row, 2:30] == value).all()
    assert ax.images[0].get_clim() == (0, 1) and ax.images[0].get_cmap().name == "gray"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "AE", "VAE"]
    assert ax.get_yticks().tolist() == [2 + 30 * (i + 0.5) for i in range(3)]  # each label in its row's middle
    assert ax.get_title() == "t" and ax.get_xticks().tolist() == []
    assert comparison_figure(originals[:3], ae, vae).axes[0].images[0].get_array().shape == (92, 92)
    plt.close("all")


def test_plot_history_draws_each_key_against_epoch():
    import matplotlib.pyplot as plt

    records = [{"epoch": 1, "train_loss": 3.0}, {"epoch": 2, "train_loss": 2.0, "test_loss": 2.5}]
    ax = plot_history({"AE": records, "VAE": History(records)}, logy=True)
    lines = {line.get_label(): (line.get_xdata().tolist(), line.get_ydata().tolist()) for line in ax.get_lines()}
    assert lines == {"AE train loss": ([1, 2], [3.0, 2.0]), "AE test loss": ([2], [2.5]),
                     "VAE train loss": ([1, 2], [3.0, 2.0]), "VAE test loss": ([2], [2.5])}
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
    assert plot_history({"AE": records}, keys=("train_loss",), ylabel="x").get_yscale() == "linear"
    plt.close("all")


def test_class_histograms_are_grouped_bars_with_the_uniform_line():
    import matplotlib.pyplot as plt

    counts = {"real": torch.tensor([10] * 10), "model": torch.arange(10) * 2}
    ax = plot_class_histograms(counts)
    bars = ax.patches
    assert [b.get_height() for b in bars] == [10] * 10 + [2 * d for d in range(10)]
    assert [round(b.get_x() + b.get_width() / 2, 6) for b in bars[:2]] == [-0.2, 0.8]  # width 0.4, centred on d
    assert [round(b.get_x() + b.get_width() / 2, 6) for b in bars[10:12]] == [0.2, 1.2]
    (uniform,) = [line for line in ax.get_lines() if line.get_label().startswith("uniform")]
    assert uniform.get_ydata()[0] == 10.0  # 100 real images / 10 digits
    assert ax.get_xticks().tolist() == list(range(10))
    assert ax.get_title() == "Which digits does each model generate?"
    single = plot_class_histograms({"one": torch.tensor([5] * 10)}, title="x")
    assert single.patches[3].get_x() + single.patches[3].get_width() / 2 == pytest.approx(3.0)
    assert single.get_title() == "x" and single.patches[0].get_width() == pytest.approx(0.8)
    plt.close("all")


def test_image_grid_size_follows_rows_and_columns():
    import matplotlib.pyplot as plt

    images = torch.rand(10, 1, 28, 28)
    fig = image_grid(images, nrow=4, scale=2.0)
    width, height = fig.get_size_inches()
    assert width == pytest.approx(4 * 0.9 * 2) and height == pytest.approx(3 * 0.95 * 2)
    assert image_grid(images, nrow=5, title="x").get_size_inches()[1] == pytest.approx(2 * 0.95 + 0.4)
    plt.close("all")


def test_grids_show_grey_levels_as_they_are():
    """0 is black and 1 white whatever the images hold: no autoscaling of a dim grid, pixels kept square."""
    import matplotlib.pyplot as plt

    fig = image_grid(torch.full((9, 1, 28, 28), 0.25) + torch.linspace(0, 0.5, 9).view(9, 1, 1, 1), nrow=4)
    shown = fig.axes[0].images[0]
    assert shown.get_clim() == (0, 1) and shown.get_interpolation() == "nearest"
    assert shown.get_array().shape == (2 + 3 * 30, 2 + 4 * 30)  # 9 images in rows of 4: 3 rows
    assert fig.get_size_inches()[1] == pytest.approx(3 * 0.95)
    assert image_grid(torch.rand(16, 1, 28, 28)).axes[0].images[0].get_array().shape == (62, 242)  # 8 a row
    plt.close("all")


def test_class_histograms_name_each_set_and_draw_nothing_for_none():
    import matplotlib.pyplot as plt

    ax = plot_class_histograms({"real": torch.ones(10), "model": torch.ones(10)})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["uniform (N / 10)", "real", "model"]
    assert {round(b.get_width(), 6) for b in ax.patches} == {0.4}
    with pytest.warns(UserWarning, match="No artists with labels"):  # matplotlib: an empty legend
        empty = plot_class_histograms({})
    assert len(empty.patches) == 0 and len(empty.get_lines()) == 0
    plt.close("all")


def test_interpolate_with_two_frames_is_the_endpoints_and_its_messages():
    a, b = torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 3.0]])
    assert torch.equal(interpolate(a, b, 2), torch.stack([a, b], 1))
    with pytest.raises(ValueError, match="an interpolation path needs at least 2 frames, got 1"):
        interpolate(a, b, 1)
    with pytest.raises(ValueError, match=r"start and end codes differ in shape: \(1, 2\) vs \(2, 1\)"):
        interpolate(a, b.reshape(2, 1), 3)


def test_grid_array_clips_to_the_unit_interval_and_pads_with_grey():
    images = torch.stack([torch.full((1, 2, 2), v) for v in (-0.5, 1.5)])
    tiles = grid_array(images, nrow=2, pad=1)
    assert tiles.shape == (1 + 3, 1 + 2 * 3)
    assert (tiles[1:3, 1:3] == 0).all() and (tiles[1:3, 4:6] == 1).all()  # clipped to black and white
    assert (tiles[0] == 0.5).all() and (tiles[:, 3] == 0.5).all()  # grey lines between the tiles


def test_a_grid_shows_only_images_no_frame_no_ticks():
    import matplotlib.pyplot as plt

    ax = image_grid(torch.rand(3, 1, 28, 28), nrow=3, row_labels=["x"]).axes[0]
    assert not any(spine.get_visible() for spine in ax.spines.values())
    assert not any(tick.tick1line.get_visible() for tick in ax.yaxis.get_major_ticks())  # the label, not its tick
    plt.close("all")


def test_decode_takes_codes_of_any_float_dtype():
    torch.manual_seed(0)
    model = build_model(ModelConfig("ae", 2, (8,), (8,)))
    z = torch.randn(3, 2)
    assert torch.equal(decode(model, z.double()), decode(model, z))  # float64 codes (e.g. from NumPy) cast to float32
