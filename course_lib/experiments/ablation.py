"""Lesson 04 over seeds: each recipe trained from several seeds, its mean and spread, and a verdict per change.

The ladder and the leave-one-out of :mod:`course_lib.experiments.recipes` become measurements: every recipe is
trained once per seed (:func:`run_seeds`), and a change (one rung, one improvement left out, one part of a rung
that changes two things) gets a verdict from :func:`course_lib.compare.paired_difference`, seed paired with seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_lib.compare import mean_spread, paired_difference
from course_lib.experiments.recipes import Recipe, RecipeResult, changes, ladder_step, run_recipe

SPLIT_RUNGS: dict[int, tuple[str, ...]] = {5: ("lr", "plateau_scheduler"), 6: ("epochs", "batch_size")}
"""Rungs where the article's step changes several things, and the parts measured alone: rung 5 (AdamW and the
plateau scheduler) also raises the learning rate, rung 6 changes the epochs and the batch size together."""

METRICS = ("ae_mse", "vae_neg_elbo")
"""The metrics verdicts are given for: the AE's test MSE per pixel and the VAE's test -ELBO (lower is better)."""


def keep_part(rung: int, field: str) -> Recipe:
    """Rung ``rung`` with ``train.<field>`` left at the rung before's value: what the rest of the step does alone."""
    before, after = ladder_step(rung - 1), ladder_step(rung)
    if f"train.{field}" not in changes(before, after):
        raise ValueError(f"rung {rung} does not change train.{field}")
    kept = getattr(before.train, field)
    shown = f"{kept:g}" if isinstance(kept, float) else repr(kept)
    return after.replace(name=f"{after.name}, {field} kept at {shown}", train=after.train.replace(**{field: kept}))


@dataclass
class SeededRuns:
    """One recipe trained from several seeds: the results in seed order."""

    recipe: Recipe
    seeds: tuple[int, ...]
    results: list[RecipeResult]

    def values(self, key: str) -> list[float]:
        """``key`` of each seed's row (e.g. ``"ae_mse"``), in seed order."""
        return [result.row[key] for result in self.results]

    def summary(self, keys: Sequence[str]) -> dict[str, Any]:
        """A row: the recipe's name, then ``<key>`` (mean over seeds) and ``<key>_sd`` (their standard deviation)."""
        row: dict[str, Any] = {"config": self.recipe.name, "seeds": len(self.seeds)}
        for key in keys:
            row[key], row[f"{key}_sd"] = mean_spread(self.values(key))
        return row


def run_seeds(
    recipe: Recipe, seeds: Sequence[int], train_images: torch.Tensor, val_images: torch.Tensor | None,
    test_images: torch.Tensor, device: torch.device | str = "cpu", cache_dir: str | Path | None = None,
) -> SeededRuns:
    """:func:`course_lib.experiments.recipes.run_recipe` once per seed (through the cache when given), without a
    progress bar per model (a notebook shows one per recipe)."""
    if not seeds:
        raise ValueError("no seeds")
    results = [run_recipe(recipe, train_images, val_images, test_images, device, seed, False, cache_dir)
               for seed in seeds]
    return SeededRuns(recipe, tuple(seeds), results)


def verdicts(change: str, without: SeededRuns, with_: SeededRuns) -> dict[str, Any]:
    """A row for one change: per metric of :data:`METRICS`, the mean paired difference ``with - without``
    (``d_<key>``), its 95 % half-width (``d_<key>_pm``) and the verdict (``<key>_verdict``)."""
    if without.seeds != with_.seeds:
        raise ValueError(f"seeds differ: {without.seeds} and {with_.seeds}")
    row: dict[str, Any] = {"change": change}
    for key in METRICS:
        difference = paired_difference(without.values(key), with_.values(key))
        row[f"d_{key}"], row[f"d_{key}_pm"], row[f"{key}_verdict"] = (
            difference.mean, difference.half_width, difference.verdict)
    return row


def cache_summary(all_runs: Sequence[SeededRuns]) -> str:
    """How many of the models behind ``all_runs`` were trained now and how many came from the cache."""
    states = [result.row[f"{kind}_cache"] for runs in all_runs for result in runs.results for kind in ("ae", "vae")]
    loaded = sum(state.startswith("loaded") for state in states)
    trained = len(states) - loaded
    return f"{len(states)} models: {trained} trained (or resumed) in this run, {loaded} loaded from the cache"
