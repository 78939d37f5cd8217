"""The core's evaluation helpers, FLD, grids and the table printer, checked against independent computations."""

import pytest
import torch

from course_lib.evaluate import decode, encode, interpolate, reconstruct, sample_prior
from course_lib.metrics import frechet_distance
from course_lib.models import ModelConfig, build_model
from course_lib.report import table
from course_lib.viz import grid_array, image_grid


def gaussian(n, d, mean=0.0, std=1.0, seed=0):
    return mean + std * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_frechet_distance_of_a_set_to_itself_is_zero():
    a = gaussian(500, 8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_shifted_sets_is_the_squared_shift():
    a = gaussian(400, 6)
    shift = torch.tensor([3.0, 0.0, -1.0, 0.5, 0.0, 2.0], dtype=torch.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(shift.pow(2).sum().item(), rel=1e-9)


def test_frechet_distance_between_standard_normals_of_different_scale_is_closed_form():
    # N(0, I) vs N(0, 4I) in d dimensions: Tr(I + 4I - 2 * 2I) = d
    d = 5
    value = frechet_distance(gaussian(200_000, d, seed=1), gaussian(200_000, d, std=2.0, seed=2))
    assert value == pytest.approx(d, rel=0.02)


def test_frechet_distance_is_symmetric():
    a, b = gaussian(300, 4, seed=3), gaussian(300, 4, mean=1.0, std=1.5, seed=4)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    with pytest.raises(ValueError, match="two feature vectors"):
        frechet_distance(a[:1], b)


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


def test_interpolation_runs_from_start_to_end_in_even_steps():
    start, end = torch.tensor([[0.0, 2.0]]), torch.tensor([[4.0, -2.0]])
    path = interpolate(start, end, 5)
    assert path.shape == (1, 5, 2)
    assert torch.equal(path[0, 0], start[0]) and torch.equal(path[0, -1], end[0])
    assert torch.allclose(path[0, 1], torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="2 frames"):
        interpolate(start, end, 1)


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
