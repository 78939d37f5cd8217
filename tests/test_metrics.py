"""course_lib.metrics: the Frechet distance against closed forms, AUROC and ROC, the linear probe, latent statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from course_lib.metrics import (
    DigitClassifier,
    accuracy,
    auroc,
    class_histogram,
    confidence,
    embed,
    fld,
    frechet_distance,
    latent_statistics,
    linear_probe,
    linear_probe_predictions,
    predict_proba,
    roc_curve,
    train_classifier,
)

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


# --- the judge classifier -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def judge(mnist5k):
    return train_classifier(mnist5k.train_images[::4], mnist5k.train_labels[::4], epochs=2, seed=1)


def test_digit_classifier_layers_and_features():
    from course_lib.models import count_parameters

    classifier = DigitClassifier().eval()
    # convs 1->32, 32->32, 32->64, 64->64 (3x3, each with batch norm's scale and shift), 64*7*7 -> 64 features,
    # 64 -> 10 logits
    convs = (9 * 32 + 32 + 64) + (9 * 32 * 32 + 32 + 64) + (9 * 32 * 64 + 64 + 128) + (9 * 64 * 64 + 64 + 128)
    assert count_parameters(classifier) == convs + (64 * 49 * 64 + 64) + (64 * 10 + 10)
    x = torch.rand(3, 1, 28, 28)
    features = classifier.embed(x)
    assert features.shape == (3, 64) and features.min() >= 0  # after a ReLU
    assert torch.allclose(classifier(x), features @ classifier.head.weight.T + classifier.head.bias)


def test_trained_judge_recognises_digits_and_its_helpers_agree(judge, mnist5k):
    images, labels = mnist5k.test_images[::5], mnist5k.test_labels[::5]
    assert not judge.training
    probabilities = predict_proba(judge, images, batch_size=64)
    assert probabilities.shape == (200, 10) and torch.allclose(probabilities.sum(1), torch.ones(200))
    with torch.no_grad():
        assert torch.allclose(probabilities, torch.softmax(judge(images), 1), atol=1e-6)
    predicted = probabilities.argmax(1)
    assert accuracy(judge, images, labels) == pytest.approx((predicted == labels).float().mean().item())
    assert accuracy(judge, images, labels) > 0.5  # chance is 0.1
    assert torch.equal(class_histogram(judge, images), torch.bincount(predicted, minlength=10))
    assert torch.allclose(confidence(judge, images), probabilities.max(1).values)
    assert torch.allclose(confidence(judge, images * 3 - 1), confidence(judge, (images * 3 - 1).clamp(0, 1)))
    features = embed(judge, images, batch_size=64)
    with torch.no_grad():
        assert torch.allclose(features, judge.embed(images), atol=1e-6)
    assert fld(judge, images[:100], images[100:]) == pytest.approx(frechet_distance(features[:100], features[100:]))


def test_train_classifier_is_seeded_and_checks_its_epochs(mnist5k):
    images, labels = mnist5k.train_images[::40], mnist5k.train_labels[::40]
    first, again = (train_classifier(images, labels, epochs=1, seed=1) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))
    other = train_classifier(images, labels, epochs=1, seed=2)
    assert not all(torch.equal(a, b) for a, b in zip(other.parameters(), first.parameters()))
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        train_classifier(images, labels, epochs=0)


def test_frechet_distance_in_one_dimension_is_the_closed_form():
    # (m_a - m_b)^2 + (s_a - s_b)^2 for N(m_a, s_a^2) and N(m_b, s_b^2)
    a, b = gaussian(200_000, 1, mean=1.0, std=2.0, seed=5), gaussian(200_000, 1, mean=-0.5, std=0.5, seed=6)
    assert frechet_distance(a, b) == pytest.approx(1.5**2 + 1.5**2, rel=0.01)


def test_frechet_distance_matches_scipys_matrix_square_root():
    """The usual FID formula Tr(S_a + S_b - 2 sqrtm(S_a S_b)) on covariances that do not commute."""
    linalg = pytest.importorskip("scipy.linalg")
    generator = torch.Generator().manual_seed(7)
    a = torch.randn(300, 5, generator=generator, dtype=torch.float64) @ torch.randn(5, 5, generator=generator,
                                                                                     dtype=torch.float64)
    b = torch.randn(200, 5, generator=generator, dtype=torch.float64) * torch.tensor([3.0, 1, 0.5, 2, 1]) + 0.3
    cov_a, cov_b = np.cov(a.numpy().T), np.cov(b.numpy().T)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum().item() + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b))
    assert frechet_distance(a, b) == pytest.approx(expected.real, rel=1e-6)
    assert frechet_distance(a.float(), b.float()) == pytest.approx(expected.real, rel=1e-4)  # any dtype goes in


def test_linear_probe_sees_every_scale_the_same():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=generator)
    centres = torch.randn(4, 3, generator=generator) * 2
    codes = centres[labels] + torch.randn(400, 3, generator=generator)
    codes = torch.cat([codes, torch.ones(400, 1)], 1)  # a dead unit (std 0) does no harm
    base = linear_probe(codes[:300], labels[:300], codes[300:], labels[300:], steps=100)
    scaled = codes * torch.tensor([1e4, 1e-3, 1.0, 5.0]) + 1e3
    assert linear_probe(scaled[:300], labels[:300], scaled[300:], labels[300:], steps=100) == pytest.approx(base,
                                                                                                         abs=0.02)
    assert base > 0.7
    # the test set's labels may hold a class the training set lacks: the probe still has an output for it
    assert 0 <= linear_probe(codes[:300], labels[:300] % 3, codes[300:], labels[300:], steps=10) <= 1


def test_roc_curve_with_tied_scores_moves_diagonally():
    scores = torch.tensor([0.9, 0.5, 0.5, 0.1])
    labels = torch.tensor([1, 1, 0, 0])
    fpr, tpr = roc_curve(scores, labels)
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert auroc(scores, labels) == pytest.approx(0.875)  # (1 + 1 + 1 + 0.5) / 4 pairs


def test_auroc_with_a_single_negative_and_its_messages():
    assert auroc(torch.tensor([0.2, 0.9, 0.5]), torch.tensor([1, 1, 0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="^AUROC needs at least one positive and one negative example$"):
        auroc(torch.rand(3), torch.ones(3))
    with pytest.raises(ValueError, match="^scores must be finite$"):
        auroc(torch.tensor([0.0, float("inf")]), torch.tensor([0, 1]))


def test_latent_statistics_match_numpys_correlation():
    generator = torch.Generator().manual_seed(1)
    codes = torch.randn(6, 3, generator=generator, dtype=torch.float64) * torch.tensor([0.1, 3.0, 20.0]) + 5
    codes[:, 2] += 10 * codes[:, 0]  # correlated with unit 0
    stats = latent_statistics(codes)
    expected = np.corrcoef(codes.numpy().T)
    assert np.allclose(stats["corr"].numpy(), expected, atol=1e-6)
    off = np.abs(expected[~np.eye(3, dtype=bool)]).mean()
    assert stats["mean_abs_corr"] == pytest.approx(off, rel=1e-5)
    assert torch.allclose(stats["std"], codes.std(0).float())
    two = latent_statistics(codes[:, :2])
    assert two["mean_abs_corr"] == pytest.approx(abs(expected[0, 1]), rel=1e-5)
    one = latent_statistics(codes[:, :1])
    assert one["mean_abs_corr"] == 0.0 and one["corr"].tolist() == [[1.0]]


def test_roc_curve_ends_at_one_one_when_the_lowest_score_is_positive():
    fpr, tpr = roc_curve(torch.tensor([0.9, 0.1]), torch.tensor([0, 1]))
    assert fpr.tolist() == [0.0, 1.0, 1.0] and tpr.tolist() == [0.0, 0.0, 1.0]
    assert fpr.dtype == tpr.dtype == torch.float64


def test_class_histogram_counts_all_ten_digits_even_unpredicted_ones(judge, mnist5k):
    ones = mnist5k.test_images[mnist5k.test_labels == 1][:5]  # five images of a 1: most digits get no vote
    histogram = class_histogram(judge, ones)
    assert histogram.shape == (10,) and histogram.sum() == 5


def test_linear_probe_defaults_and_its_weight_penalty():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (300,), generator=generator)
    codes = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])[labels] + torch.randn(300, 2, generator=generator)
    train, test = (codes[:200], labels[:200]), (codes[200:], labels[200:])
    default = linear_probe(*train, *test)
    assert default == linear_probe(*train, *test, steps=300, lr=0.1, weight_decay=1e-4, seed=0) and default > 0.9
    # a strong L2 penalty pins the weights at 0: the probe can only guess the most common class
    majority = torch.bincount(test[1]).max().item() / len(test[1])
    assert linear_probe(*train, *test, weight_decay=100.0) <= majority + 0.02


def test_the_probes_weight_penalty_shrinks_it_to_the_majority_class():
    torch.manual_seed(0)
    codes, test = torch.randn(300, 4), torch.randn(200, 4)
    labels = (codes[:, 0] > -0.5).long()  # about 70 % ones, decided by the first code value
    free = linear_probe_predictions(codes, labels, test, weight_decay=0.0)
    assert (free == (test[:, 0] > -0.5).long()).float().mean() > 0.9
    crushed = linear_probe_predictions(codes, labels, test, weight_decay=100.0)
    assert crushed.tolist() == [1] * len(test)  # weights near 0: the bias alone decides, for the majority


def test_frechet_distance_needs_two_feature_vectors_a_side():
    two = torch.tensor([[0.0], [1.0]])
    assert frechet_distance(two, two) == pytest.approx(0.0, abs=1e-12)
    for a, b in ((two[:1], two), (two, two[:1])):
        with pytest.raises(ValueError, match="at least two feature vectors on each side"):
            frechet_distance(a, b)
