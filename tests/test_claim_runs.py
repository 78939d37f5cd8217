"""Unit tests of course_lib.experiments.claim_runs: notebook 07's runs, the images each trains on, and the
train-or-load cache, on 300 mnist-5k digits with a couple of epochs per model."""

from __future__ import annotations

from dataclasses import replace
from itertools import product
from types import SimpleNamespace

import pytest
import torch

from course_lib import train as course_train
from course_lib.data import Dataset
from course_lib.evaluate import evaluate
from course_lib.experiments import claim_runs
from course_lib.experiments.claim_runs import Run, TrainedRun, train_run, training_images
from course_lib.losses import BCEObjective, BetaVAEObjective, MSEObjective
from course_lib.models import build_model, preset_config
from course_lib.train import IMPROVED_BETA, History, TrainConfig, TrainingDivergedError, fit


@pytest.fixture(scope="module")
def small(mnist5k) -> Dataset:
    """300 training and 100 test digits of mnist-5k, drawn at random (mnist-5k's digits are sorted by label)."""
    generator = torch.Generator().manual_seed(0)
    train = torch.randperm(len(mnist5k.train_images), generator=generator)[:300]
    test = torch.randperm(len(mnist5k.test_images), generator=generator)[:100]
    return Dataset(mnist5k.name, mnist5k.train_images[train], mnist5k.train_labels[train], mnist5k.test_images[test],
                   mnist5k.test_labels[test], mnist5k.source)


@pytest.fixture
def quick(monkeypatch):
    """Two epochs on all digits, three on a subset of 40."""
    monkeypatch.setattr(claim_runs, "EPOCHS", 2)
    monkeypatch.setattr(claim_runs, "SUBSET_EPOCHS", 3)
    monkeypatch.setattr(claim_runs, "SUBSET", 40)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def changed(images: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    return (images != originals).flatten(1).any(1)


def fashion_pair() -> torch.Tensor:
    return torch.stack([torch.full((1, 28, 28), 0.25), torch.full((1, 28, 28), 0.75)])


def from_fashion(images: torch.Tensor, fashion: torch.Tensor) -> int:
    return sum(any(torch.equal(image, f) for f in fashion) for image in images)


# --- runs ---------------------------------------------------------------------------------------------------


def test_a_run_checks_its_kind_and_loss():
    with pytest.raises(ValueError, match="kind must be 'ae' or 'vae', got 'gan'"):
        Run("gan")
    with pytest.raises(ValueError, match="loss must be 'default', or 'bce' for an AE, got 'bce' for vae"):
        Run("vae", loss="bce")
    with pytest.raises(ValueError, match="got 'mse' for ae"):
        Run("ae", loss="mse")
    assert Run("ae", loss="bce").loss == "bce" and Run("vae").loss == "default"
    default = Run("vae")
    assert (default.seed, default.beta, default.lr, default.held_out, default.outliers, default.subset) == (
        0, IMPROVED_BETA, 1e-3, None, False, None)


@pytest.mark.parametrize(
    "run, name",
    [
        (Run("ae"), "AE, seed 0"),
        (Run("vae", 2), "VAE, seed 2"),
        (Run("vae", 1, beta=4.0), "VAE, seed 1, beta 4"),
        (Run("vae", beta=1.0), "VAE, seed 0, beta 1"),
        (Run("ae", beta=4.0), "AE, seed 0"),  # an AE has no beta
        (Run("ae", lr=3e-3), "AE, seed 0, lr 0.003"),
        (Run("vae", 3, held_out=3), "VAE, seed 3, without 3"),
        (Run("ae", held_out=0), "AE, seed 0, without 0"),
        (Run("ae", outliers=True), "AE, seed 0, with outliers"),
        (Run("vae", 1, subset=500), "VAE, seed 1, 500 digits"),
        (Run("ae", loss="bce"), "AE, seed 0, BCE"),
        (Run("vae", 1, beta=2.0, lr=1e-2, held_out=7, outliers=True, subset=50),
         "VAE, seed 1, beta 2, lr 0.01, without 7, with outliers, 50 digits"),
        (Run("ae", 2, lr=1e-2, subset=50, loss="bce"), "AE, seed 2, lr 0.01, 50 digits, BCE"),
    ],
)
def test_run_names(run, name):
    assert run.name == name


def test_every_run_of_the_notebook_has_its_own_name():
    runs = {r for kind in ("ae", "vae") for runs in (claim_runs.main_runs(kind), claim_runs.held_out_runs(kind),
                                                      claim_runs.outlier_runs(kind), claim_runs.subset_runs(kind),
                                                      claim_runs.learning_rate_runs(kind)) for r in runs}
    runs |= set(claim_runs.beta_runs())
    assert len({r.name for r in runs}) == len(runs)


def test_run_objectives():
    assert type(Run("ae").objective()) is MSEObjective
    assert type(Run("ae", loss="bce").objective()) is BCEObjective
    assert type(Run("ae", beta=2.0).objective()) is MSEObjective
    vae = Run("vae").objective()
    assert type(vae) is BetaVAEObjective and vae.beta == 0.5  # the article's improved VAE
    assert Run("vae", beta=4.0).objective() == BetaVAEObjective(4.0)


def test_run_recipe_is_the_articles_improved_optimiser(monkeypatch):
    monkeypatch.setattr(claim_runs, "EPOCHS", 7)
    monkeypatch.setattr(claim_runs, "SUBSET_EPOCHS", 11)
    recipe = Run("ae", 3, lr=1e-2).recipe()
    assert isinstance(recipe, TrainConfig)
    assert (recipe.epochs, recipe.batch_size, recipe.optimizer, recipe.lr, recipe.weight_decay, recipe.seed) == (
        7, 128, "adamw", 1e-2, 1e-5, 3)
    assert not recipe.plateau_scheduler and recipe.rotation_degrees == 0 and recipe.noise_std == 0
    assert Run("vae", subset=40).recipe().epochs == 11
    assert Run("vae", 5).recipe().seed == 5 and Run("vae").recipe().lr == 1e-3


def test_trained_run_diverged():
    model = build_model(preset_config("seed-improved-ae"))
    assert TrainedRun(Run("ae"), model, {"diverged": 1.0}, [], "").diverged is True
    assert TrainedRun(Run("ae"), model, {"diverged": 0.0}, [], "").diverged is False
    assert TrainedRun(Run("ae"), model, {"mse": 0.1}, [], "").diverged is False


# --- the images a run trains on -----------------------------------------------------------------------------


def test_fashion_images_come_from_debians_package_where_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(claim_runs, "DEBIAN_FASHION_MNIST", tmp_path / "missing")
    assert claim_runs.fashion_images() is None
    calls = []
    fake = SimpleNamespace(test_images=torch.zeros(3, 1, 28, 28))
    monkeypatch.setattr(claim_runs, "load_dataset", lambda name, download=True: calls.append((name, download)) or fake)
    monkeypatch.setattr(claim_runs, "DEBIAN_FASHION_MNIST", tmp_path)
    assert claim_runs.fashion_images() is fake.test_images
    assert calls == [("fashion-mnist", False)]  # never downloads


def test_training_images_of_a_plain_run_are_all_training_digits(small):
    assert torch.equal(training_images(Run("ae", 2, lr=1e-2), small), small.train_images)


@pytest.mark.parametrize("digit", [0, 7])
def test_training_images_without_a_digit(small, digit):
    images = training_images(Run("vae", held_out=digit), small)
    keep = [i for i, label in enumerate(small.train_labels.tolist()) if label != digit]
    assert 200 < len(keep) < 300
    assert torch.equal(images, small.train_images[keep])


def test_training_images_with_outliers_replace_5_percent(small):
    run = Run("ae", seed=1, outliers=True)
    images = training_images(run, small)
    assert images.shape == small.train_images.shape
    assert int(changed(images, small.train_images).sum()) == 15  # round(0.05 * 300)
    assert torch.equal(images, training_images(run, small))
    other = training_images(Run("ae", seed=2, outliers=True), small)
    assert not torch.equal(changed(images, small.train_images), changed(other, small.train_images))
    assert from_fashion(images, fashion_pair()) == 0
    assert from_fashion(training_images(run, small, fashion_pair()), fashion_pair()) == 3  # a fifth of 15


def test_training_images_without_a_digit_and_with_outliers(small):
    keep = small.train_labels != 1
    n = int(keep.sum())
    images = training_images(Run("ae", seed=1, held_out=1, outliers=True), small)
    assert len(images) == n
    assert int(changed(images, small.train_images[keep]).sum()) == round(0.05 * n)


def test_training_images_of_a_subset_are_seeded_distinct_training_digits(small):
    flat = small.train_images.flatten(1)

    def indices(images: torch.Tensor) -> list[int]:
        return [int((flat == image.flatten()).all(1).nonzero()[0]) for image in images]

    chosen = indices(training_images(Run("ae", seed=1, subset=40), small))
    assert len(chosen) == 40 and len(set(chosen)) == 40 and chosen != list(range(40))
    assert indices(training_images(Run("vae", seed=1, subset=40), small)) == chosen  # the same digits for both
    assert set(indices(training_images(Run("ae", seed=2, subset=40), small))) != set(chosen)
    without = indices(training_images(Run("ae", seed=1, held_out=3, subset=40), small))
    assert len(without) == 40 and all(small.train_labels[i] != 3 for i in without)


# --- the lists of runs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_run_lists(kind, monkeypatch):
    monkeypatch.setattr(claim_runs, "SUBSET", 40)
    seeds = claim_runs.SEEDS
    assert len(seeds) >= 3 and len(set(seeds)) == len(seeds)
    assert claim_runs.main_runs(kind) == [Run(kind, seed) for seed in seeds]
    assert claim_runs.held_out_runs(kind) == [Run(kind, seed=d, held_out=d) for d in range(10)]
    assert claim_runs.outlier_runs(kind) == [Run(kind, seed, outliers=True) for seed in seeds]
    subset = claim_runs.subset_runs(kind)
    assert [(r.kind, r.seed, r.subset, r.loss) for r in subset] == [
        (kind, seed, 40, "bce" if kind == "ae" else "default") for seed in seeds]
    assert all(r == Run(kind, r.seed, subset=40, loss=r.loss) for r in subset)
    rates = claim_runs.learning_rate_runs(kind)
    assert len(rates) == len(claim_runs.LEARNING_RATES) * len(seeds)
    assert {(r.lr, r.seed) for r in rates} == set(product(claim_runs.LEARNING_RATES, seeds))
    assert all(r == Run(kind, r.seed, lr=r.lr) for r in rates)
    assert 1e-3 in claim_runs.LEARNING_RATES  # the article's


def test_beta_runs():
    runs = claim_runs.beta_runs()
    assert len(runs) == len(claim_runs.BETAS) * len(claim_runs.SEEDS)
    assert {(r.beta, r.seed) for r in runs} == set(product(claim_runs.BETAS, claim_runs.SEEDS))
    assert all(r == Run("vae", r.seed, beta=r.beta) for r in runs)
    assert {IMPROVED_BETA, 1.0} <= set(claim_runs.BETAS)


# --- training and the cache ---------------------------------------------------------------------------------


def test_train_run_trains_once_then_loads_the_same_model(small, quick, tmp_path):
    run = Run("vae", seed=1)
    first = train_run(run, small, folder=tmp_path)
    assert first.message.startswith("trained") and first.run == run
    assert [f.name[: len("VAE_seed-1_")] for f in tmp_path.glob("*.pt")] == ["VAE_seed-1_"]
    assert first.model.config == preset_config("seed-improved-vae") and not first.model.training
    assert [record["epoch"] for record in first.history] == [1, 2]
    assert first.metrics == pytest.approx(evaluate(first.model, small.test_images, seed=1) | {"diverged": 0.0})
    assert first.diverged is False
    second = train_run(run, small, folder=tmp_path)
    assert second.message.startswith("loaded") and second.run == run
    assert same_weights(first.model, second.model) and not second.model.training
    assert second.metrics == first.metrics and second.history == first.history


@pytest.mark.parametrize("run", [Run("vae", seed=1), Run("ae", seed=2, subset=40, loss="bce")],
                         ids=["vae", "ae-bce-subset"])
def test_train_run_trains_its_preset_on_its_images_with_its_objective_and_recipe(small, quick, tmp_path, run):
    trained = train_run(run, small, folder=tmp_path)
    torch.manual_seed(run.seed)
    twin = build_model(preset_config(f"seed-improved-{run.kind}"))
    history = fit(twin, training_images(run, small), run.recipe(), objective=run.objective(), progress=False)
    assert len(trained.history) == len(history) == (3 if run.subset else 2)
    assert same_weights(trained.model, twin)


def test_train_run_hands_fit_the_runs_images_recipe_objective_and_checkpoint(small, quick, tmp_path, monkeypatch):
    seen = {}

    def fake_fit(model, images, cfg, test_images=None, objective=None, checkpoint=None, resume=False,
                 progress=None, desc=None):
        seen.update(images=images, cfg=cfg, test_images=test_images, objective=objective, checkpoint=checkpoint,
                    resume=resume, progress=progress, desc=desc)
        return History([{"epoch": 1, "train_loss": 0.5}])

    monkeypatch.setattr(claim_runs, "fit", fake_fit)
    fashion = fashion_pair()
    run = Run("ae", seed=2, outliers=True, loss="bce")
    trained = train_run(run, small, folder=tmp_path, fashion=fashion)
    assert torch.equal(seen["images"], training_images(run, small, fashion))
    assert seen["cfg"] == run.recipe() and seen["objective"] == BCEObjective()
    assert torch.equal(seen["test_images"], small.test_images)
    assert seen["checkpoint"].parent == tmp_path and seen["checkpoint"].name.startswith("AE_seed-2_with-outliers_BCE_")
    assert seen["checkpoint"].name.endswith(".partial.pt")
    assert seen["resume"] is False and seen["progress"] is False and seen["desc"] == "AE, seed 2, with outliers, BCE"
    assert trained.history == [{"epoch": 1, "train_loss": 0.5}] and not trained.diverged
    train_run(Run("vae", seed=3), small, folder=tmp_path, progress=True)
    assert seen["progress"] is True and seen["objective"] == BetaVAEObjective(0.5)


def test_train_run_keys_its_cache_by_run_data_and_recipe(small, quick, tmp_path, monkeypatch):
    def trained(run: Run, data: Dataset = small, **kwargs) -> bool:
        message = train_run(run, data, folder=tmp_path, **kwargs).message
        assert message.startswith(("trained", "loaded"))
        return message.startswith("trained")

    base = Run("ae")
    assert trained(base) and not trained(base)
    assert trained(Run("ae", seed=1))
    assert trained(base, replace(small, train_images=small.train_images.flip(0)))  # the digits in another order
    assert trained(base, replace(small, test_images=small.test_images[:50], test_labels=small.test_labels[:50]))
    assert trained(base, replace(small, name="mnist"))
    outliers = Run("ae", outliers=True)
    assert trained(outliers) and trained(outliers, fashion=fashion_pair()) and not trained(outliers)
    monkeypatch.setattr(claim_runs, "EPOCHS", 1)
    assert trained(base)
    assert len(list(tmp_path.glob("*.pt"))) == 8


def test_train_run_caches_in_outputs_07_claims_by_default(small, quick, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setattr(claim_runs, "EPOCHS", 1)
    train_run(Run("ae"), small)
    assert [f.parent.name for f in tmp_path.rglob("*.pt")] == ["07_claims"]


def test_a_diverging_run_is_kept_marked_diverged_and_cached_so(small, quick, tmp_path, monkeypatch):
    monkeypatch.setattr(course_train, "train_epoch", lambda *args: float("nan"))  # the loss is NaN in epoch 1
    run = Run("vae", seed=1, lr=1e-2)
    first = train_run(run, small, folder=tmp_path)
    assert first.message.startswith("trained") and first.diverged and first.metrics["diverged"] == 1.0
    assert first.history == []
    torch.manual_seed(1)
    assert same_weights(first.model, build_model(preset_config("seed-improved-vae")))  # its last good weights
    by_hand = evaluate(first.model, small.test_images, seed=1)
    assert {k: v for k, v in first.metrics.items() if k != "diverged"} == pytest.approx(by_hand)
    monkeypatch.setattr(claim_runs, "fit", lambda *args, **kwargs: pytest.fail("a cached run is not trained again"))
    second = train_run(run, small, folder=tmp_path)
    assert second.message.startswith("loaded") and second.diverged and second.metrics == first.metrics


def test_a_diverging_fit_is_caught_only_as_divergence(small, quick, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise TrainingDivergedError("the training loss became nan in epoch 1")

    monkeypatch.setattr(claim_runs, "fit", broken)
    assert train_run(Run("ae"), small, folder=tmp_path).diverged

    def failing(*args, **kwargs):
        raise RuntimeError("not a divergence")

    monkeypatch.setattr(claim_runs, "fit", failing)
    with pytest.raises(RuntimeError, match="not a divergence"):
        train_run(Run("ae", seed=1), small, folder=tmp_path)
