"""course_lib.metrics: the Frechet distance against closed forms, AUROC and ROC, the linear probe, latent statistics."""

from __future__ import annotations

import itertools

import pytest
import torch

from course_lib.metrics import auroc, frechet_distance, latent_statistics, linear_probe, roc_curve

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


# --- the Frechet distance -----------------------------------------------------------------------------------


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
