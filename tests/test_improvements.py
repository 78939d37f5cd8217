"""The ladder of the article's eight improvements and leave-one-out (course_lib.improvements)."""

import math

import pytest
import torch

from course_lib import improvements as imp
from course_lib.models import PRESETS, build_model, count_parameters
from course_lib.train import RECIPES


def test_baseline_is_the_article_baseline():
    base = imp.ladder_step(0)
    assert base.ae == PRESETS["seed-baseline-ae"] and base.vae == PRESETS["seed-baseline-vae"]
    assert base.train == RECIPES["seed-baseline"]
    assert count_parameters(build_model(base.ae)) == 219_891
    assert count_parameters(build_model(base.vae)) == 218_838


def test_last_rung_is_the_improved_article_except_the_documented_fixes():
    last = imp.ladder()[-1]
    assert last.ae == PRESETS["seed-improved-ae"] and last.vae == PRESETS["seed-improved-vae"]
    # Erratum 2 (noise was promised, never added) and erratum 5 (scheduler on the training loss) are fixed.
    assert last.train == RECIPES["seed-improved"].replace(noise_std=imp.NOISE_STD, plateau_on="test")
    assert imp.changes(imp.Recipe("x", last.ae, last.vae, RECIPES["seed-improved"]), last) == {
        "train.plateau_on": ("train", "test"),
        "train.noise_std": (0.0, imp.NOISE_STD),
    }
    assert count_parameters(build_model(last.ae)) == 488_864
    assert count_parameters(build_model(last.vae)) == 476_208
    assert imp.full_recipe().replace(name=last.name) == last


def test_ladder_has_nine_rungs_each_adding_something():
    rungs = imp.ladder()
    assert len(rungs) == 9 and len(imp.IMPROVEMENTS) == 8
    for before, after in zip(rungs[:-1], rungs[1:]):
        assert imp.changes(before, after), f"{after.name} changes nothing"
    assert len({r.name for r in rungs}) == 9


def test_improvements_touch_disjoint_fields():
    base = imp.baseline_recipe()
    seen: set[str] = set()
    for improvement in imp.IMPROVEMENTS:
        fields = set(imp.changes(base, improvement.apply(base)))
        assert fields, improvement.key
        assert not fields & seen, f"{improvement.key} overlaps {fields & seen}"
        seen |= fields


@pytest.mark.parametrize("key", imp.IMPROVEMENT_KEYS)
def test_leave_one_out_removes_exactly_that_improvement(key):
    full, loo = imp.full_recipe(), imp.leave_one_out(key)
    removed = imp.changes(loo, full)
    improvement = next(i for i in imp.IMPROVEMENTS if i.key == key)
    base = imp.baseline_recipe()
    expected = imp.changes(base, improvement.apply(base))
    assert removed == expected  # (value without it, value with it), field by field
    assert loo.name == f"all but {improvement.label.lstrip('+')}"


def test_leave_one_out_list_and_unknown_key():
    assert [r.name for r in imp.leave_one_out_recipes()] == [imp.leave_one_out(k).name for k in imp.IMPROVEMENT_KEYS]
    with pytest.raises(ValueError, match="unknown improvement"):
        imp.leave_one_out("dropout")
    with pytest.raises(ValueError, match="ladder step"):
        imp.ladder_step(9)


def test_scale_epochs_keeps_ratio_with_minimum():
    assert imp.scale_epochs(imp.ladder_step(0), 100, 2).train.epochs == 2
    assert imp.scale_epochs(imp.full_recipe(), 100, 2).train.epochs == 5
    assert imp.scale_epochs(imp.full_recipe(), 1000, 3).train.epochs == 3
    assert imp.scale_epochs(imp.full_recipe()).train == imp.full_recipe().train
    with pytest.raises(ValueError):
        imp.scale_epochs(imp.full_recipe(), 0)


def test_split_validation_is_disjoint_and_seeded():
    images = torch.arange(100.0).reshape(100, 1, 1, 1)
    train, val = imp.split_validation(images, 0.1, seed=3)
    assert len(train) == 90 and len(val) == 10
    assert set(train.flatten().tolist()).isdisjoint(val.flatten().tolist())
    assert torch.equal(val, imp.split_validation(images, 0.1, seed=3)[1])
    with pytest.raises(ValueError):
        imp.split_validation(images, 1.0)


def test_run_recipe_trains_both_models_and_scores_the_test_set(mnist5k):
    recipe = imp.scale_epochs(imp.ladder_step(6), 250, 2)  # 2 epochs, batch 1024
    train, val = imp.split_validation(mnist5k.train_images[:1200], 0.25)
    result = imp.run_recipe(recipe, train, val, mnist5k.test_images[:200], seed=0)
    row = result.row
    assert row["config"] == recipe.name and row["epochs"] == 2 and row["batch_size"] == 1024
    assert row["ae_params"] == count_parameters(result.ae) and row["vae_params"] == count_parameters(result.vae)
    for key in ("ae_mse", "vae_mse", "vae_neg_elbo", "vae_kl", "ae_seconds", "vae_seconds"):
        assert math.isfinite(row[key]) and row[key] >= 0, key
    assert 0 < row["ae_mse"] < 0.3 and 0 < row["vae_neg_elbo"] < 784 * 5
    assert len(result.ae_history) == 2 and "test_mse" in result.vae_history.last
    again = imp.run_recipe(recipe, train, val, mnist5k.test_images[:200], seed=0).row
    assert again["ae_mse"] == pytest.approx(row["ae_mse"], rel=1e-5)
    assert again["vae_neg_elbo"] == pytest.approx(row["vae_neg_elbo"], rel=1e-5)


def _small_run(mnist5k):
    recipe = imp.scale_epochs(imp.ladder_step(6), 250, 2)  # 2 epochs, batch 1024
    train, val = imp.split_validation(mnist5k.train_images[:1200], 0.25)
    return recipe, train, val, mnist5k.test_images[:200]


def test_cached_run_is_loaded_not_retrained(mnist5k, tmp_path, monkeypatch):
    recipe, train, val, test = _small_run(mnist5k)
    first = imp.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    assert sorted(p.name.rsplit("_", 1)[1] for p in tmp_path.iterdir()) == ["ae.pt", "vae.pt"]  # no partials left

    def no_training(*args, **kwargs):
        raise AssertionError("a cached recipe must not be trained again")

    monkeypatch.setattr(imp, "fit", no_training)
    again = imp.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    assert again.row == first.row  # metrics and training seconds come back from the files
    assert torch.equal(again.vae.decoder[0].weight, first.vae.decoder[0].weight)
    with pytest.raises(AssertionError, match="must not be trained"):  # another seed is another run
        imp.run_recipe(recipe, train, val, test, seed=1, cache_dir=tmp_path)


def test_training_spec_shares_the_ae_across_beta():
    full, without_beta = imp.full_recipe(), imp.leave_one_out("beta")
    assert imp.training_spec(full, "ae", 0) == imp.training_spec(without_beta, "ae", 0)  # the AE ignores beta
    assert imp.training_spec(full, "vae", 0) != imp.training_spec(without_beta, "vae", 0)
    assert imp.training_spec(full, "ae", 0) != imp.training_spec(full, "ae", 1)
    assert imp.training_spec(without_beta, "vae", 0) == imp.training_spec(imp.ladder_step(7), "vae", 0)
    with pytest.raises(ValueError, match="kind"):
        imp.training_spec(full, "gan", 0)


def test_identical_models_are_trained_once(mnist5k, tmp_path, monkeypatch, capsys):
    recipe, train, val, test = _small_run(mnist5k)
    first = imp.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    other = recipe.replace(name="other beta", train=recipe.train.replace(beta=0.5))
    real_fit, trained = imp.fit, []

    def counting_fit(model, *args, **kwargs):
        trained.append(kwargs["desc"])
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(imp, "fit", counting_fit)
    second = imp.run_recipe(other, train, val, test, seed=0, cache_dir=tmp_path)
    assert trained == ["other beta vae"]  # its AE is the first recipe's, loaded from the cache
    assert second.row["ae_fingerprint"] == first.row["ae_fingerprint"]
    assert second.row["vae_fingerprint"] != first.row["vae_fingerprint"]
    assert second.row["ae_mse"] == first.row["ae_mse"] and second.row["ae_seconds"] == first.row["ae_seconds"]
    assert "(same model, training and data as this one)" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.pt"))) == 3


def test_interrupted_run_resumes_exactly(mnist5k, tmp_path, monkeypatch):
    recipe, train, val, test = _small_run(mnist5k)
    recipe = recipe.replace(train=recipe.train.replace(epochs=4))
    uninterrupted = imp.run_recipe(recipe, train, val, test, seed=0).row
    monkeypatch.setattr(imp, "CHECKPOINT_EVERY", 2)
    real_fit = imp.fit

    def crash_after_checkpoint(model, images, cfg, *args, **kwargs):
        real_fit(model, images, cfg.replace(epochs=2), *args, **kwargs)  # writes the epoch-2 checkpoint
        raise KeyboardInterrupt

    monkeypatch.setattr(imp, "fit", crash_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        imp.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path)
    assert [p.name.rsplit("_", 1)[1] for p in tmp_path.iterdir()] == ["ae.partial.pt"]
    monkeypatch.setattr(imp, "fit", real_fit)
    resumed = imp.run_recipe(recipe, train, val, test, seed=0, cache_dir=tmp_path).row
    for key in ("ae_mse", "vae_mse", "vae_neg_elbo", "vae_kl"):
        assert resumed[key] == pytest.approx(uninterrupted[key], rel=1e-6), key


def test_format_table():
    text = imp.format_table([{"config": "a", "x": 0.5}], [("config", "config", "s"), ("x", "X", ".2f")])
    assert text.splitlines() == ["config     X", "------  ----", "a       0.50"]
