"""Tests of the core functions that notebook 07's claims module used to hold: AUROC and ROC, the linear probe,
latent statistics, interpolation, decoding and prior sampling, and the Markdown table."""

from __future__ import annotations

import itertools

import pytest
import torch

from course_lib.evaluate import decode, interpolate, sample_prior
from course_lib.metrics import auroc, latent_statistics, linear_probe, roc_curve
from course_lib.models import ModelConfig, build_model
from course_lib.report import table

# --- AUROC and ROC ------------------------------------------------------------------------------------------


def test_auroc_perfect_random_inverted():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    perfect = torch.tensor([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert auroc(perfect, labels) == pytest.approx(1.0)
    assert auroc(-perfect, labels) == pytest.approx(0.0)
    assert auroc(torch.ones(6), labels) == pytest.approx(0.5)  # all tied: chance
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(20_000, generator=generator)
    random_labels = torch.rand(20_000, generator=generator) < 0.3
    assert auroc(scores, random_labels) == pytest.approx(0.5, abs=0.02)


def test_auroc_matches_pairwise_count_with_ties():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.2])
    labels = torch.tensor([0, 0, 1, 1, 1, 0, 1])
    pos = scores[labels.bool()]
    neg = scores[~labels.bool()]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert auroc(scores, labels) == pytest.approx(wins / (len(pos) * len(neg)))


def test_auroc_textbook_example():
    assert auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.75)


def test_auroc_rejects_bad_input():
    with pytest.raises(ValueError, match="positive and one negative"):
        auroc(torch.rand(4), torch.zeros(4))
    with pytest.raises(ValueError, match="length"):
        auroc(torch.rand(4), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="finite"):
        auroc(torch.tensor([0.0, float("nan")]), torch.tensor([0, 1]))


def test_roc_curve_points_and_area():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    labels = torch.tensor([0, 0, 1, 1])
    fpr, tpr = roc_curve(scores, labels)
    # thresholds from high to low: flag nothing, 0.8 (a positive), 0.4 (a negative), 0.35 (a positive), 0.1
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert torch.trapezoid(tpr, fpr).item() == pytest.approx(auroc(scores, labels))


# --- interpolation, decoding, prior samples -----------------------------------------------------------------


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


# --- structure of the latent space --------------------------------------------------------------------------


def test_linear_probe_separable_and_random():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (600,), generator=generator)
    centres = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    codes = centres[labels] + torch.randn(600, 2, generator=generator)
    assert linear_probe(codes[:400], labels[:400], codes[400:], labels[400:]) > 0.95
    noise = torch.randn(600, 2, generator=generator)
    assert linear_probe(noise[:400], labels[:400], noise[400:], labels[400:]) < 0.5


def test_latent_statistics():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5000, 1, generator=generator)
    codes = torch.cat([x, 2 * x + 1, torch.randn(5000, 1, generator=generator)], 1)
    stats = latent_statistics(codes)
    assert stats["corr"].shape == (3, 3)
    assert stats["corr"][0, 1].item() == pytest.approx(1.0, abs=1e-4)
    assert abs(stats["corr"][0, 2].item()) < 0.05
    assert stats["std"][1].item() == pytest.approx(2.0, rel=0.05)
    assert stats["mean"][1].item() == pytest.approx(1.0, abs=0.1)
    assert stats["mean_abs_corr"] == pytest.approx((1 + 2 * abs(stats["corr"][0, 2].item())) / 3, abs=0.03)
    dead = latent_statistics(torch.cat([x, torch.zeros(5000, 1)], 1))  # a constant unit: no NaN
    assert torch.isfinite(dead["corr"]).all()


# --- the Markdown table ------------------------------------------------------------------------------------


def test_markdown_table_escapes_pipes():
    text = table([{"a": 1, "b": "x|y"}], [("a", "a", "d"), ("b", "b", "s")], markdown=True)
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |"]
