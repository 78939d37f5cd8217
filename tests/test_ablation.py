"""Lesson 04 over seeds: split rungs, seeded runs, their summaries and verdicts."""

import statistics

import pytest

from course_lib.compare import paired_difference
from course_lib.experiments import ablation, recipes


def test_keep_part_undoes_exactly_one_change_of_a_rung():
    lr_kept = ablation.keep_part(5, "lr")
    assert recipes.changes(recipes.ladder_step(5), lr_kept) == {"train.lr": (1e-3, 1e-4)}
    assert lr_kept.train.optimizer == "adamw" and lr_kept.name == "5. +AdamW & plateau, lr kept at 0.0001"
    no_scheduler = ablation.keep_part(5, "plateau_scheduler")
    assert recipes.changes(recipes.ladder_step(5), no_scheduler) == {"train.plateau_scheduler": (True, False)}
    assert no_scheduler.name == "5. +AdamW & plateau, plateau_scheduler kept at False"
    batch_kept = ablation.keep_part(6, "batch_size")
    assert recipes.changes(recipes.ladder_step(5), batch_kept) == {"train.epochs": (200, 500)}
    epochs_kept = ablation.keep_part(6, "epochs")
    assert recipes.changes(recipes.ladder_step(5), epochs_kept) == {"train.batch_size": (128, 1024)}
    assert epochs_kept.name == "6. +500 epochs, batch 1024, epochs kept at 200"
    with pytest.raises(ValueError, match=r"rung 4 does not change train.lr"):
        ablation.keep_part(4, "lr")


def test_split_rungs_name_every_training_change_of_their_rungs():
    for rung, fields in ablation.SPLIT_RUNGS.items():
        changed = recipes.changes(recipes.ladder_step(rung - 1), recipes.ladder_step(rung))
        assert set(fields) <= {name.split(".", 1)[1] for name in changed}


def _tiny(mnist5k):
    recipe = recipes.scale_epochs(recipes.ladder_step(1), 200, 1)  # 1 epoch
    train, val = recipes.split_validation(mnist5k.train_images[:600], 0.2)
    return recipe, train, val, mnist5k.test_images[:100]


def test_run_seeds_trains_each_seed_and_summarises_them(mnist5k, tmp_path):
    recipe, train, val, test = _tiny(mnist5k)
    runs = ablation.run_seeds(recipe, (0, 1, 2), train, val, test, cache_dir=tmp_path)
    single = recipes.run_recipe(recipe, train, val, test, seed=1)
    assert runs.values("ae_mse")[1] == pytest.approx(single.row["ae_mse"], rel=1e-5)  # seed 1 is seed 1's run
    assert len(set(runs.values("ae_mse"))) == 3  # three seeds, three different models
    row = runs.summary(("ae_mse", "vae_kl"))
    assert row["config"] == recipe.name and row["seeds"] == 3
    assert row["ae_mse"] == pytest.approx(statistics.fmean(runs.values("ae_mse")))
    assert row["vae_kl_sd"] == pytest.approx(statistics.stdev(runs.values("vae_kl")))
    assert ablation.cache_summary([runs]) == "6 models: 6 trained (or resumed) in this run, 0 loaded from the cache"
    again = ablation.run_seeds(recipe, (0, 1, 2), train, val, test, cache_dir=tmp_path)
    assert ablation.cache_summary([runs, again]) == (
        "12 models: 6 trained (or resumed) in this run, 6 loaded from the cache")
    with pytest.raises(ValueError, match="no seeds"):
        ablation.run_seeds(recipe, (), train, val, test)


def test_verdicts_pair_the_seeds_of_two_recipes(mnist5k, tmp_path):
    recipe, train, val, test = _tiny(mnist5k)
    before = ablation.run_seeds(recipes.scale_epochs(recipes.ladder_step(0), 200, 1), (0, 1), train, val, test)
    after = ablation.run_seeds(recipe, (0, 1), train, val, test)
    row = ablation.verdicts("+latent 16", before, after)
    expected = paired_difference(before.values("ae_mse"), after.values("ae_mse"))
    assert row["change"] == "+latent 16"
    assert (row["d_ae_mse"], row["d_ae_mse_pm"], row["ae_mse_verdict"]) == (
        expected.mean, expected.half_width, expected.verdict)
    assert row["d_ae_mse"] == pytest.approx(statistics.fmean(after.values("ae_mse"))
                                            - statistics.fmean(before.values("ae_mse")))
    assert ablation.verdicts("itself", after, after)["vae_neg_elbo_verdict"] == "identical"
    other_seeds = ablation.run_seeds(recipe, (0, 3), train, val, test)
    with pytest.raises(ValueError, match="seeds differ"):
        ablation.verdicts("x", after, other_seeds)
