"""course_lib.experiments.beyond: the ladder's rungs, cached training, intervals over seeds and the verdicts."""

import dataclasses
import math
import statistics
from types import SimpleNamespace

import pytest
import torch

from course_lib.data import Dataset
from course_lib.evaluate import evaluate
from course_lib.experiments import beyond as B
from course_lib.losses import BetaVAEObjective, MSEObjective
from course_lib.models import PRESETS
from course_lib.train import IMPROVED_BETA, RECIPES


def test_the_ladder_changes_one_thing_per_rung():
    article, conv, lr, beta = B.ladder()
    assert (article.ae, article.vae, article.vae_beta) == (PRESETS["seed-improved-ae"], PRESETS["seed-improved-vae"],
                                                           IMPROVED_BETA)
    assert article.train == RECIPES["seed-improved"].replace(epochs=B.ARTICLE_EPOCHS)
    assert conv.ae.architecture == conv.vae.architecture == "conv" and conv.ae.latent_dim == conv.vae.latent_dim == 16
    assert not conv.ae.spatial_latent and conv.vae_beta == IMPROVED_BETA
    assert conv.train == article.train.replace(epochs=B.CONV_EPOCHS, batch_size=128)  # optimiser and rotations kept
    assert dataclasses.replace(lr, name=conv.name, change=conv.change, train=conv.train) == conv
    assert lr.train == conv.train.replace(lr=B.CONV_LR) and B.CONV_LR != conv.train.lr
    assert dataclasses.replace(beta, name=lr.name, change=lr.change, vae_beta=lr.vae_beta) == lr
    assert beta.vae_beta == 1.0 and [r.name for r in (conv, lr, beta)] == ["conv", "+ lr 0.002", "+ beta 1"]
    assert B.SPATIAL_VAE.latent_shape == (B.SPATIAL_CHANNELS, 7, 7) and B.SPATIAL_VAE.kind == "vae"


def test_a_rung_gives_each_kind_its_model_and_objective():
    rung = B.ladder()[1]
    assert rung.model("ae") is rung.ae and rung.model("vae") is rung.vae
    assert isinstance(rung.objective("ae"), MSEObjective) and rung.objective("vae") == BetaVAEObjective(IMPROVED_BETA)
    with pytest.raises(ValueError, match="kind must be 'ae' or 'vae'"):
        rung.model("gan")


@pytest.fixture
def tiny(mnist5k):
    return Dataset("tiny", mnist5k.train_images[:64], mnist5k.train_labels[:64], mnist5k.test_images[:32],
                   mnist5k.test_labels[:32], "test")


def tiny_rungs():
    return [dataclasses.replace(r, train=r.train.replace(epochs=1, batch_size=32)) for r in B.ladder()]


def test_a_rung_is_trained_once_scored_on_the_test_split_and_shared_where_identical(tiny, tmp_path):
    article, conv, lr, beta = tiny_rungs()
    first = B.train_rung(conv, "vae", tiny, seed=1, folder=tmp_path)
    assert first.message.startswith("trained") and first.seconds > 0 and (first.rung, first.seed) == ("conv", 1)
    again = B.train_rung(conv, "vae", tiny, seed=1, folder=tmp_path)
    assert again.message.startswith("loaded conv-vae-seed1_") and again.metrics == first.metrics
    assert again.seconds == first.seconds
    recomputed = evaluate(again.model, tiny.test_images, seed=1)  # the stored metrics are the test split's
    assert recomputed["mse"] == pytest.approx(first.metrics["mse"], rel=1e-5)
    assert recomputed["neg_elbo"] == pytest.approx(first.metrics["neg_elbo"], rel=1e-5)
    assert B.train_rung(beta, "ae", tiny, seed=1, folder=tmp_path).message.startswith("trained")
    assert B.train_rung(lr, "ae", tiny, seed=1, folder=tmp_path).message.startswith("loaded")  # the same AE
    assert B.train_rung(beta, "vae", tiny, seed=1, folder=tmp_path).message.startswith("trained")  # beta 1 differs
    assert B.train_rung(article, "ae", tiny, seed=1, folder=tmp_path).message.startswith("trained")
    assert B.train_rung(conv, "vae", tiny, seed=2, folder=tmp_path).message.startswith("trained")
    other = dataclasses.replace(tiny, test_images=tiny.test_images.flip(0))
    assert B.train_rung(conv, "vae", other, seed=1, folder=tmp_path).message.startswith("trained")


def trained(rung, kind, seed, value, seconds):
    metric = B.goal_metric(kind)
    return B.Trained(rung, kind, seed, None, {metric: value}, seconds, "")


RESULTS = [trained("article", "ae", s, v, t) for s, v, t in ((0, 0.015, 100), (1, 0.014, 110), (2, 0.016, 90))] + \
    [trained("article", "vae", s, v, t) for s, v, t in ((0, 112.0, 80), (1, 113.0, 85), (2, 111.0, 90))] + \
    [trained("conv", "ae", s, v, t) for s, v, t in ((0, 0.0110, 95), (1, 0.0112, 99), (2, 0.0108, 100))] + \
    [trained("conv", "vae", s, v, t) for s, v, t in ((0, 106.0, 70), (1, 104.0, 75), (2, 105.0, 95))]


def test_intervals_are_student_t_over_seeds():
    i = B.interval(RESULTS, "conv", "vae")
    half = 4.302653 * statistics.stdev([106.0, 104.0, 105.0]) / math.sqrt(3)  # t(0.975, 2 dof)
    assert i.estimate == pytest.approx(105.0) and (i.low, i.high) == pytest.approx((105.0 - half, 105.0 + half),
                                                                                   rel=1e-4)
    assert B.seconds(RESULTS, "article", "vae") == [80, 85, 90]
    text = B.ladder_table(RESULTS, [SimpleNamespace(name="article"), SimpleNamespace(name="conv")])
    assert text == """\
rung       AE test MSE (95% CI)    AE train s  VAE test -ELBO, nats (95% CI)  VAE train s
-------  ----------------------  ------------  -----------------------------  -----------
article  0.0150 (0.0125-0.0175)  100 (90-110)            112.0 (109.5-114.5)   85 (80-90)
conv     0.0110 (0.0105-0.0115)   99 (95-100)            105.0 (102.5-107.5)   75 (70-95)"""
    one_seed = B.ladder_table([r for r in RESULTS if r.seed == 0], [SimpleNamespace(name="conv")])
    assert one_seed.splitlines()[2].split()[:2] == ["conv", "0.0110"] and "inf" not in one_seed  # no interval


def test_a_goal_needs_the_whole_interval_below_it_and_no_more_time_than_the_article():
    ae, vae = B.goal_verdicts(RESULTS, "conv", "article")
    assert (ae.rung, ae.kind, ae.goal, ae.article_seconds) == ("conv", "ae", 0.012, 100)
    assert ae.quality and ae.in_time and ae.text.startswith("[met] AE mse 0.011")  # slowest seed 100 s = median
    assert not vae.quality and not vae.in_time and vae.text.startswith("[not met]")  # interval up to 107.5; 95 s > 85
    slow = [r if not (r.rung == "conv" and r.kind == "ae" and r.seed == 2) else dataclasses.replace(r, seconds=101)
            for r in RESULTS]
    assert not B.goal_verdicts(slow, "conv", "article")[0].in_time
    one_seed = [r for r in RESULTS if r.seed == 0]
    assert "one seed: no interval" in B.goal_verdicts(one_seed, "conv", "article")[0].text


def points(*pairs):
    return [SimpleNamespace(step=i, seconds=s, fld=f) for i, (s, f) in enumerate(pairs)]


def test_the_budget_verdict_compares_at_equal_seconds_within_the_rivals_budget():
    rival = points((10, 400), (20, 300), (80, 150))
    verdict = B.budget_verdict(points((30, 200), (60, 120), (200, 50)), rival, noise=10)
    assert verdict.holds and verdict.spatial.fld == 120 and verdict.rival.fld == 300  # not the rival's later 150
    assert "FLD 120 after 60 s" in verdict.text and "budget: the MLP latent side's 80 s" in verdict.text
    assert verdict.noise == 10 and verdict.text.startswith("[holds]")
    assert not B.budget_verdict(points((30, 295)), rival, noise=10).holds  # better by less than the noise
    tie = B.budget_verdict(points((30, 290)), rival, noise=10)  # better by exactly the noise: not enough
    assert tie.holds is False and tie.text.startswith("[does not hold]")
    first = B.budget_verdict(points((5, 900)), rival)
    assert first.holds and first.rival is None and "the MLP latent side had no snapshot by then" in first.text
    same_time = B.budget_verdict(points((20, 250)), rival)  # the rival's snapshot at the same seconds counts
    assert same_time.rival.fld == 300 and same_time.holds
    at_budget = B.budget_verdict(points((80, 100)), rival)  # a snapshot exactly at the budget is within it
    assert at_budget.spatial.fld == 100 and at_budget.rival.fld == 150
    late = B.budget_verdict(points((100, 10)), rival)
    assert late.holds is False and late.text.startswith("[inconclusive]") and late.spatial is None
    assert late.noise == 0.0 and late.rival is None


def weights(model):
    return torch.cat([v.flatten().float() for v in model.state_dict().values()])


def test_rungs_that_differ_only_in_beta_or_seed_are_trained_apart(tiny, tmp_path, monkeypatch):
    _, _, lr, beta = tiny_rungs()
    half = B.train_rung(lr, "vae", tiny, seed=1, folder=tmp_path)
    one = B.train_rung(beta, "vae", tiny, seed=1, folder=tmp_path)  # same model config, beta 1 instead of 0.5
    assert one.message.startswith("trained") and not torch.equal(weights(one.model), weights(half.model))
    other_seed = B.train_rung(lr, "vae", tiny, seed=2, folder=tmp_path)
    assert other_seed.message.startswith("trained") and not torch.equal(weights(other_seed.model),
                                                                        weights(half.model))
    assert (half.kind, half.seed) == ("vae", 1) and list(tmp_path.glob("lr-0-002-vae-seed1_*.pt"))
    shuffled = dataclasses.replace(tiny, train_images=tiny.train_images.flip(0))
    assert B.train_rung(lr, "vae", shuffled, seed=1, folder=tmp_path).message.startswith("trained")
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path / "outputs"))
    default = B.train_rung(lr, "ae", tiny)  # default folder and seed
    assert default.seed == 0 and list((tmp_path / "outputs" / B.FOLDER).glob("lr-0-002-ae-seed0_*.pt"))


def test_conv_config_and_the_rungs_say_what_they_are():
    spatial = B.conv_config("vae", 98, spatial_latent=True)
    assert spatial.latent_shape == (2, 7, 7) and not B.conv_config("ae").spatial_latent
    assert (spatial.encoder_widths, spatial.decoder_widths) == (B.CONV_WIDTHS, B.CONV_WIDTHS[::-1])
    assert spatial.decoder_widths[0] == spatial.encoder_widths[-1] and spatial.batch_norm is True
    assert spatial.activation == "leaky_relu" and spatial.architecture == "conv"
    article, conv, lr, beta = B.ladder()
    assert [r.name for r in (article, conv, lr, beta)] == ["article's MLPs", "conv", "+ lr 0.002", "+ beta 1"]
    assert f"{B.ARTICLE_EPOCHS} epochs of batch 1024, beta 0.5" in article.change
    assert conv.change.startswith(f"convolutions (16, 32 channels) at batch 128 for {B.CONV_EPOCHS} epochs")
    assert lr.change == "learning rate 0.002 instead of 0.001"
    assert beta.change == "the VAE trains on the -ELBO it is scored on (beta 1 instead of 0.5)"
