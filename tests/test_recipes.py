"""Lesson 04's experiment: the article's eight improvements as a ladder and leave-one-out, and the recipe cache."""

import math

import pytest
import torch

from course_lib import train as train_module
from course_lib.experiments import recipes
from course_lib.losses import BetaVAEObjective, MSEObjective
from course_lib.models import PRESETS, build_model, count_parameters
from course_lib.train import IMPROVED_BETA, RECIPES, held_out_loss


def test_baseline_is_the_article_baseline():
    base = recipes.ladder_step(0)
    assert base.ae == PRESETS["seed-baseline-ae"] and base.vae == PRESETS["seed-baseline-vae"]
    assert base.train == RECIPES["seed-baseline"] and base.vae_objective == BetaVAEObjective(1.0)
    assert count_parameters(build_model(base.ae)) == 219_891
    assert count_parameters(build_model(base.vae)) == 218_838


def test_last_rung_is_the_improved_article_except_the_documented_fixes():
    last, article = recipes.ladder()[-1], recipes.article_improved_recipe()
    assert last.ae == PRESETS["seed-improved-ae"] and last.vae == PRESETS["seed-improved-vae"]
    assert article.train == RECIPES["seed-improved"] and article.vae_objective == BetaVAEObjective(IMPROVED_BETA)
    # Erratum 2 (noise was promised, never added) and erratum 5 (scheduler on the training loss) are fixed.
    assert recipes.changes(article.replace(name=last.name), last) == {
        "train.plateau_on": ("train", "test"),
        "train.noise_std": (0.0, recipes.NOISE_STD),
    }
    assert last.vae_objective.beta == 0.5
    assert count_parameters(build_model(last.ae)) == 488_864
    assert count_parameters(build_model(last.vae)) == 476_208
    assert recipes.full_recipe().replace(name=last.name) == last


def test_each_model_has_its_objective():
    last = recipes.full_recipe()
    assert last.objective("ae") == MSEObjective() and last.objective("vae") == BetaVAEObjective(0.5)
    assert last.model("vae") is last.vae
    with pytest.raises(ValueError, match="kind"):
        last.model("gan")


def test_ladder_has_nine_rungs_each_adding_something():
    rungs = recipes.ladder()
    assert len(rungs) == 9 and len(recipes.IMPROVEMENTS) == 8
    for before, after in zip(rungs[:-1], rungs[1:]):
        assert recipes.changes(before, after), f"{after.name} changes nothing"
    assert len({r.name for r in rungs}) == 9
    assert recipes.changes(rungs[7], rungs[8]) == {"vae_objective.beta": (1.0, 0.5)}


def test_improvements_touch_disjoint_fields():
    base = recipes.baseline_recipe()
    seen: set[str] = set()
    for improvement in recipes.IMPROVEMENTS:
        fields = set(recipes.changes(base, improvement.apply(base)))
        assert fields, improvement.key
        assert not fields & seen, f"{improvement.key} overlaps {fields & seen}"
        seen |= fields


@pytest.mark.parametrize("key", recipes.IMPROVEMENT_KEYS)
def test_leave_one_out_removes_exactly_that_improvement(key):
    full, loo = recipes.full_recipe(), recipes.leave_one_out(key)
    removed = recipes.changes(loo, full)
    improvement = next(i for i in recipes.IMPROVEMENTS if i.key == key)
    base = recipes.baseline_recipe()
    expected = recipes.changes(base, improvement.apply(base))
    assert removed == expected  # (value without it, value with it), field by field
    assert loo.name == f"all but {improvement.label.lstrip('+')}"


def test_leave_one_out_list_and_unknown_key():
    names = [r.name for r in recipes.leave_one_out_recipes()]
    assert names == [recipes.leave_one_out(k).name for k in recipes.IMPROVEMENT_KEYS]
    with pytest.raises(ValueError, match="unknown improvement"):
        recipes.leave_one_out("dropout")
    with pytest.raises(ValueError, match="ladder step"):
        recipes.ladder_step(9)


def test_scale_epochs_keeps_ratio_with_minimum():
    assert recipes.scale_epochs(recipes.ladder_step(0), 100, 2).train.epochs == 2
    assert recipes.scale_epochs(recipes.full_recipe(), 100, 2).train.epochs == 5
    assert recipes.scale_epochs(recipes.full_recipe(), 1000, 3).train.epochs == 3
    assert recipes.scale_epochs(recipes.full_recipe()).train == recipes.full_recipe().train
    with pytest.raises(ValueError):
        recipes.scale_epochs(recipes.full_recipe(), 0)


def test_split_validation_is_disjoint_and_seeded():
    images = torch.arange(100.0).reshape(100, 1, 1, 1)
    train, val = recipes.split_validation(images, 0.1, seed=3)
    assert len(train) == 90 and len(val) == 10
    assert set(train.flatten().tolist()).isdisjoint(val.flatten().tolist())
    assert torch.equal(val, recipes.split_validation(images, 0.1, seed=3)[1])
    with pytest.raises(ValueError):
        recipes.split_validation(images, 1.0)


def _small_run(mnist5k):
    recipe = recipes.scale_epochs(recipes.ladder_step(6), 250, 2)  # 2 epochs, batch 1024, beta 1
    train, val = recipes.split_validation(mnist5k.train_images[:1200], 0.25)
    return recipe, train, val, mnist5k.test_images[:200]


def test_model_key_of_the_ae_ignores_the_vae_beta_and_follows_the_data(mnist5k):
    recipe, train, val, test = _small_run(mnist5k)
    other_beta = recipe.replace(name="other", vae_objective=BetaVAEObjective(3.0))
    key = recipes.model_key(recipe, "ae", 0, train, val, test)
    assert recipes.model_key(other_beta, "ae", 0, train, val, test) == key
    vae_key = recipes.model_key(recipe, "vae", 0, train, val, test)
    assert recipes.model_key(other_beta, "vae", 0, train, val, test) != vae_key
    assert recipes.model_key(recipe, "ae", 0, train.clone(), val.clone(), test.clone()) == key  # same data, same key
    changed = val.clone()
    changed[0, 0, 14, 14] = 1.0 - changed[0, 0, 14, 14]
    assert recipes.model_key(recipe, "ae", 0, train, changed, test) != key  # one pixel of the data
    assert recipes.model_key(recipe, "ae", 0, train, val, test[:100]) != key
    assert recipes.model_key(recipe, "ae", 1, train, val, test) != key  # another seed
    assert recipes.model_key(recipes.scale_epochs(recipe, 2), "ae", 0, train, val, test) != key


def test_run_recipe_trains_both_models_with_their_objectives(mnist5k):
    recipe, train, val, test = _small_run(mnist5k)
    recipe = recipe.replace(vae_objective=BetaVAEObjective(0.5))
    result = recipes.run_recipe(recipe, train, val, test, seed=0)
    row = result.row
    assert row["config"] == recipe.name and row["epochs"] == 2 and row["batch_size"] == 1024
    assert row["ae_params"] == count_parameters(result.ae) and row["vae_params"] == count_parameters(result.vae)
    for key in ("ae_mse", "vae_mse", "vae_neg_elbo", "vae_kl", "ae_seconds", "vae_seconds"):
        assert math.isfinite(row[key]) and row[key] >= 0, key
    assert 0 < row["ae_mse"] < 0.3 and 0 < row["vae_neg_elbo"] < 784 * 5
    assert len(result.ae_history) == 2 and "test_mse" in result.vae_history.last
    # The validation loss that drove the scheduler is the recipe's objective: MSE for the AE, beta 0.5 for the VAE.
    assert result.ae_history.last["test_loss"] == pytest.approx(held_out_loss(result.ae, val, MSEObjective()))
    vae_loss = held_out_loss(result.vae, val, BetaVAEObjective(0.5))
    assert result.vae_history.last["test_loss"] == pytest.approx(vae_loss, rel=1e-6)
    assert vae_loss < held_out_loss(result.vae, val, BetaVAEObjective(1.0))
    again = recipes.run_recipe(recipe, train, val, test, seed=0).row
    assert again["ae_mse"] == pytest.approx(row["ae_mse"], rel=1e-5)
    assert again["vae_neg_elbo"] == pytest.approx(row["vae_neg_elbo"], rel=1e-5)


def _count_fits(monkeypatch):
    real_fit, trained = recipes.fit, []

    def counting_fit(model, *args, **kwargs):
        trained.append(kwargs["desc"])
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(recipes, "fit", counting_fit)
    return trained


def test_cached_run_is_loaded_not_retrained(mnist5k, tmp_path, monkeypatch):
    recipe, train, val, test = _small_run(mnist5k)
    trained = _count_fits(monkeypatch)
    first = recipes.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    files = [f"6-500-epochs-batch-1024-{kind}_{first.row[f'{kind}_fingerprint']}.pt" for kind in ("ae", "vae")]
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no partial checkpoints left
    again = recipes.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    assert trained == [f"{recipe.name} ae", f"{recipe.name} vae"]  # the second run trained nothing
    cache_states = {"ae_cache", "vae_cache"}
    assert {k: v for k, v in again.row.items() if k not in cache_states} == {
        k: v for k, v in first.row.items() if k not in cache_states}  # metrics and seconds come back from the files
    assert [again.row[key] for key in sorted(cache_states)] == [f"loaded {name}" for name in files]
    assert torch.equal(again.vae.decoder[0].weight, first.vae.decoder[0].weight)
    recipes.run_recipe(recipe, train, val, test, seed=1, cache_dir=tmp_path)  # another seed is another run
    assert len(trained) == 4


def test_identical_models_are_trained_once(mnist5k, tmp_path, monkeypatch):
    recipe, train, val, test = _small_run(mnist5k)
    first = recipes.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    trained = _count_fits(monkeypatch)
    other = recipe.replace(name="other beta", vae_objective=BetaVAEObjective(0.5))
    second = recipes.run_recipe(other, train, val, test, seed=0, cache_dir=tmp_path)
    assert trained == ["other beta vae"]  # its AE is the first recipe's, loaded from the cache
    assert second.row["ae_fingerprint"] == first.row["ae_fingerprint"]
    assert second.row["vae_fingerprint"] != first.row["vae_fingerprint"]
    assert second.row["ae_mse"] == first.row["ae_mse"] and second.row["ae_seconds"] == first.row["ae_seconds"]
    assert second.row["ae_cache"] == f"loaded 6-500-epochs-batch-1024-ae_{first.row['ae_fingerprint']}.pt"
    assert first.row["ae_cache"].startswith("trained") and second.row["vae_cache"].startswith("trained")
    assert len(list(tmp_path.glob("*.pt"))) == 3


def test_interrupted_run_resumes_exactly(mnist5k, tmp_path, monkeypatch):
    recipe, train, val, test = _small_run(mnist5k)
    recipe = recipe.replace(train=recipe.train.replace(epochs=4))
    uninterrupted = recipes.run_recipe(recipe, train, val, test, seed=0).row
    monkeypatch.setattr(recipes, "CHECKPOINT_EVERY", 2)
    real_epoch, epochs_run = train_module.train_epoch, []

    def crash_in_epoch_3(*args, **kwargs):
        epochs_run.append(1)
        if len(epochs_run) == 3:  # after the epoch-2 checkpoint of the AE
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        recipes.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    assert [p.name.rsplit("_", 1)[1] for p in tmp_path.iterdir()] == [f"{uninterrupted['ae_fingerprint']}.partial.pt"]
    monkeypatch.setattr(train_module, "train_epoch", real_epoch)
    resumed = recipes.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    assert len(resumed.ae_history) == 4
    for key in ("ae_mse", "vae_mse", "vae_neg_elbo", "vae_kl"):
        assert resumed.row[key] == pytest.approx(uninterrupted[key], rel=1e-6), key


def test_recipe_names_follow_the_article_order():
    assert recipes.with_improvements(["beta", "latent16"]).name == "baseline +latent 16 +beta 0.5"
    assert recipes.with_improvements([], name="mine").name == "mine"
    assert [r.name for r in recipes.ladder()[:3]] == ["baseline", "1. +latent 16", "2. +wider"]
    assert recipes.leave_one_out("adamw_plateau").name == "all but AdamW & plateau"
    with pytest.raises(ValueError, match="ladder step must be in 0..8, got -1"):
        recipes.ladder_step(-1)
    with pytest.raises(ValueError, match="choose one of latent16, wider"):
        recipes.with_improvements(["nope"])


def test_split_validation_keeps_at_least_one_image_and_loses_none():
    images = torch.arange(30.0).reshape(30, 1, 1, 1)
    train, val = recipes.split_validation(images, 0.01)
    assert len(val) == 1 and len(train) == 29
    assert sorted(torch.cat([train, val]).flatten().tolist()) == list(range(30))
    assert len(recipes.split_validation(images, 0.5)[1]) == 15
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\), got 0"):
        recipes.split_validation(images, 0)


def test_scale_epochs_checks_its_arguments():
    with pytest.raises(ValueError, match="divisor and minimum must be >= 1"):
        recipes.scale_epochs(recipes.baseline_recipe(), 2, 0)
    assert recipes.scale_epochs(recipes.baseline_recipe(), 3).train.epochs == 66  # 200 // 3


def test_named_recipes():
    assert recipes.article_improved_recipe().name == "improved" and recipes.full_recipe().name == "all eight"
    assert recipes.baseline_recipe().name == "baseline"


def test_improvement_makers_change_what_they_name_on_both_models():
    """IMPROVEMENTS is built when the module is imported; these are the functions that build its entries."""
    base = recipes.baseline_recipe()
    wider = recipes._models(latent_dim=5, batch_norm=True)(base)
    assert (wider.ae.latent_dim, wider.vae.latent_dim, wider.ae.batch_norm, wider.vae.batch_norm) == (5, 5, True, True)
    assert wider.ae.encoder_widths == base.ae.encoder_widths and wider.train == base.train
    trained = recipes._improved_training("lr", "optimizer", noise_std=0.2)(base)
    assert (trained.train.lr, trained.train.optimizer, trained.train.noise_std) == (1e-3, "adamw", 0.2)
    assert trained.train.epochs == base.train.epochs and trained.ae == base.ae


def test_split_validation_holds_out_a_tenth_by_default():
    images = torch.arange(50.0).reshape(50, 1, 1, 1)
    train, val = recipes.split_validation(images)
    assert len(val) == 5 and torch.equal(val, recipes.split_validation(images, 0.1, seed=0)[1])


def test_train_model_without_a_cache_and_its_slug(mnist5k, tmp_path, monkeypatch):
    recipe, train, val, test = _small_run(mnist5k)
    recipe = recipe.replace(train=recipe.train.replace(epochs=1))
    result = recipes.train_model(recipe, "vae", train, val, test, seed=2)
    assert result.message == "trained" and len(result.history) == 1
    assert result.metrics == pytest.approx(recipes.evaluate(result.model, test, seed=2), rel=1e-6)
    odd = recipe.replace(name="(odd) Name!")
    cached = recipes.train_model(odd, "ae", train, val, test, seed=2, cache_dir=tmp_path)
    assert cached.message.startswith("trained, saved odd-name-ae_")
    uncached = recipes.train_model(odd, "ae", train, val, test, seed=2)
    assert cached.metrics == pytest.approx(uncached.metrics, rel=1e-6)  # the cache trains from the same seed


def test_an_interrupted_cached_run_resumes_instead_of_starting_again(mnist5k, tmp_path, monkeypatch):
    recipe, train, val, test = _small_run(mnist5k)
    recipe = recipe.replace(train=recipe.train.replace(epochs=4))
    monkeypatch.setattr(recipes, "CHECKPOINT_EVERY", 2)
    real_epoch, epochs_run = train_module.train_epoch, []

    def crash_in_epoch_3(*args, **kwargs):
        epochs_run.append(1)
        if len(epochs_run) == 3:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        recipes.train_model(recipe, "ae", train, val, test, cache_dir=tmp_path)
    epochs_run.clear()
    monkeypatch.setattr(train_module, "train_epoch", lambda *args, **kwargs: epochs_run.append(1) or real_epoch(*args))
    result = recipes.train_model(recipe, "ae", train, val, test, cache_dir=tmp_path)
    assert len(epochs_run) == 2 and "resumed" in result.message  # epochs 3 and 4 only


def test_run_recipe_shows_progress_when_asked(mnist5k, capsys):
    recipe, train, val, test = _small_run(mnist5k)
    recipes.run_recipe(recipe.replace(train=recipe.train.replace(epochs=1)), train, val, test, progress=True)
    err = capsys.readouterr().err
    assert f"{recipe.name} ae" in err and f"{recipe.name} vae" in err


def test_recipes_train_from_seed_0_by_default(mnist5k):
    recipe, train, val, test = _small_run(mnist5k)
    recipe = recipe.replace(train=recipe.train.replace(epochs=1))
    default = recipes.train_model(recipe, "ae", train, val, test)
    assert default.metrics == recipes.train_model(recipe, "ae", train, val, test, seed=0).metrics
    row = recipes.run_recipe(recipe, train, val, test).row
    assert row["ae_mse"] == pytest.approx(default.metrics["mse"], rel=1e-6)
    with pytest.raises(ValueError, match="^divisor and minimum must be >= 1$"):
        recipes.scale_epochs(recipe, 0)
