"""Lesson 04: the seed article's eight improvements as data, a ladder (add them one at a time) and leave-one-out.

A :class:`Recipe` is everything one rung trains: the AE's and the VAE's :class:`ModelConfig`, one
:class:`TrainConfig`, and the VAE's objective (which holds beta; the AE minimises the MSE). Each
:class:`Improvement` changes its own fields of a recipe and nothing else, so the ladder's last rung and every
leave-one-out recipe are well defined whatever the order. The values are the core's (``train.RECIPES``,
``train.IMPROVED_BETA``, the model presets). Two of the article's errata are fixed here, and only these:
improvement 7 adds noise as well as rotation (erratum 2, :data:`NOISE_STD`), and the plateau scheduler watches a
validation loss carved from the training images, not the training loss (erratum 5, ``plateau_on="test"``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_lib.checkpoints import CachedModel, fingerprint, train_or_load
from course_lib.evaluate import evaluate
from course_lib.losses import BetaVAEObjective, MSEObjective
from course_lib.models import PRESETS, Model, ModelConfig, build_model, count_parameters
from course_lib.train import IMPROVED_BETA, RECIPES, History, TrainConfig, fit

NOISE_STD = 0.05  # std of improvement 7's training noise (the article promises noise but gives no value)
CACHE_SUBFOLDER = "04_recipes"  # notebook 04's cache of trained models, under config.output_dir()
CHECKPOINT_EVERY = 10  # with a cache folder, a model in training is checkpointed every this many epochs
KINDS = ("ae", "vae")
IMPROVED = RECIPES["seed-improved"]


@dataclass(frozen=True)
class Recipe:
    """One configuration to train: AE and VAE model configs, the training config, and the VAE's objective."""

    name: str
    ae: ModelConfig
    vae: ModelConfig
    train: TrainConfig
    vae_objective: BetaVAEObjective = BetaVAEObjective()

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def model(self, kind: str) -> ModelConfig:
        """The config of the recipe's ``"ae"`` or ``"vae"``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be 'ae' or 'vae', got {kind!r}")
        return self.ae if kind == "ae" else self.vae

    def objective(self, kind: str) -> MSEObjective | BetaVAEObjective:
        """What the recipe's ``"ae"`` (MSE) or ``"vae"`` (:attr:`vae_objective`) minimises."""
        return MSEObjective() if self.model(kind).kind == "ae" else self.vae_objective


@dataclass(frozen=True)
class Improvement:
    """One of the article's eight changes: a short label, what it sets, and the function that applies it."""

    key: str
    label: str
    description: str
    apply: Callable[[Recipe], Recipe]


def _models(**changes: Any) -> Callable[[Recipe], Recipe]:
    """An improvement that sets the same model-config fields on the AE and the VAE."""
    return lambda r: r.replace(ae=dataclasses.replace(r.ae, **changes), vae=dataclasses.replace(r.vae, **changes))


def _improved_training(*fields: str, **fixes: Any) -> Callable[[Recipe], Recipe]:
    """An improvement that takes ``fields`` from the article's improved training recipe (plus errata ``fixes``)."""
    return lambda r: r.replace(train=r.train.replace(**{f: getattr(IMPROVED, f) for f in fields}, **fixes))


def _wider(recipe: Recipe) -> Recipe:
    """Improvement 2: the hidden layers of the article's improved presets (the article says "deeper and wider",
    but the layer count stays: only the widths change)."""
    improved = {kind: PRESETS[f"seed-improved-{kind}"] for kind in KINDS}
    return recipe.replace(**{kind: dataclasses.replace(recipe.model(kind), encoder_widths=improved[kind].encoder_widths,
                                                       decoder_widths=improved[kind].decoder_widths) for kind in KINDS})


IMPROVEMENTS: tuple[Improvement, ...] = (
    Improvement("latent16", "+latent 16", "latent dimension 3 -> 16", _models(latent_dim=16)),
    Improvement("wider", "+wider", "AE 784-256-128-64-z, VAE 784-256-128-z (decoders mirrored)", _wider),
    Improvement("leaky_relu", "+LeakyReLU", "LeakyReLU instead of ReLU", _models(activation="leaky_relu")),
    Improvement("batch_norm", "+batch norm", "BatchNorm1d after every hidden layer", _models(batch_norm=True)),
    Improvement(
        "adamw_plateau",
        "+AdamW & plateau",
        f"AdamW lr {IMPROVED.lr:g}, weight decay {IMPROVED.weight_decay:g}; ReduceLROnPlateau (patience "
        f"{IMPROVED.plateau_patience}, factor {IMPROVED.plateau_factor}) on a validation loss",
        _improved_training("optimizer", "lr", "weight_decay", "plateau_scheduler", "plateau_patience",
                           "plateau_factor", plateau_on="test"),
    ),
    Improvement("epochs_batch", f"+{IMPROVED.epochs} epochs, batch {IMPROVED.batch_size}",
                f"{IMPROVED.epochs} epochs, batch {IMPROVED.batch_size}", _improved_training("epochs", "batch_size")),
    Improvement(
        "augmentation",
        "+augmentation",
        f"random rotation +-{IMPROVED.rotation_degrees:g} degrees and Gaussian noise (std {NOISE_STD}) on "
        "training batches",
        _improved_training("rotation_degrees", noise_std=NOISE_STD),
    ),
    Improvement("beta", f"+beta {IMPROVED_BETA}", f"beta = {IMPROVED_BETA} on the VAE's KL term",
                lambda r: r.replace(vae_objective=BetaVAEObjective(IMPROVED_BETA))),
)
"""The article's eight improvements, in its order."""

IMPROVEMENT_KEYS = tuple(i.key for i in IMPROVEMENTS)


def baseline_recipe() -> Recipe:
    """The article's baseline: presets seed-baseline-ae / -vae, the seed-baseline training recipe, beta = 1."""
    return Recipe("baseline", PRESETS["seed-baseline-ae"], PRESETS["seed-baseline-vae"], RECIPES["seed-baseline"])


def article_improved_recipe() -> Recipe:
    """The article's improved models exactly as it trains them (errata 2 and 5 not fixed)."""
    return Recipe(
        "improved", PRESETS["seed-improved-ae"], PRESETS["seed-improved-vae"], IMPROVED, BetaVAEObjective(IMPROVED_BETA)
    )


def _improvement(key: str) -> Improvement:
    for improvement in IMPROVEMENTS:
        if improvement.key == key:
            return improvement
    raise ValueError(f"unknown improvement {key!r}; choose one of {', '.join(IMPROVEMENT_KEYS)}")


def with_improvements(keys: Sequence[str], name: str | None = None) -> Recipe:
    """The baseline with the named improvements applied (in the article's order)."""
    wanted = {_improvement(k).key for k in keys}
    recipe = baseline_recipe()
    for improvement in IMPROVEMENTS:
        if improvement.key in wanted:
            recipe = improvement.apply(recipe)
    default = "baseline" + "".join(f" {_improvement(k).label}" for k in IMPROVEMENT_KEYS if k in wanted)
    return recipe.replace(name=name or default)


def ladder_step(k: int) -> Recipe:
    """Rung ``k`` of the ladder (0 = baseline, 8 = all eight improvements), named by its last improvement."""
    if not 0 <= k <= len(IMPROVEMENTS):
        raise ValueError(f"ladder step must be in 0..{len(IMPROVEMENTS)}, got {k}")
    name = "baseline" if k == 0 else f"{k}. {IMPROVEMENTS[k - 1].label}"
    return with_improvements(IMPROVEMENT_KEYS[:k], name=name)


def ladder() -> list[Recipe]:
    """The nine rungs: the baseline, then one more improvement at a time."""
    return [ladder_step(k) for k in range(len(IMPROVEMENTS) + 1)]


def full_recipe() -> Recipe:
    """All eight improvements (the article's improved models, with errata 2 and 5 fixed)."""
    return with_improvements(IMPROVEMENT_KEYS, name="all eight")


def leave_one_out(key: str) -> Recipe:
    """All improvements except ``key``."""
    label = _improvement(key).label.lstrip("+")
    return with_improvements([k for k in IMPROVEMENT_KEYS if k != key], name=f"all but {label}")


def leave_one_out_recipes() -> list[Recipe]:
    """The eight leave-one-out recipes, in the article's order."""
    return [leave_one_out(k) for k in IMPROVEMENT_KEYS]


def changes(before: Recipe, after: Recipe) -> dict[str, tuple[Any, Any]]:
    """Fields that differ between two recipes, as ``{"ae.latent_dim": (3, 16), "train.lr": ...}``."""
    diff: dict[str, tuple[Any, Any]] = {}
    for part in ("ae", "vae", "train", "vae_objective"):
        a, b = dataclasses.asdict(getattr(before, part)), dataclasses.asdict(getattr(after, part))
        for field in a:
            if a[field] != b[field]:
                diff[f"{part}.{field}"] = (a[field], b[field])
    return diff


def scale_epochs(recipe: Recipe, divisor: int = 1, minimum: int = 1) -> Recipe:
    """The recipe with ``max(minimum, epochs // divisor)`` epochs (keeps the ratio between recipes' epochs)."""
    if divisor < 1 or minimum < 1:
        raise ValueError("divisor and minimum must be >= 1")
    return recipe.replace(train=recipe.train.replace(epochs=max(minimum, recipe.train.epochs // divisor)))


def split_validation(images: torch.Tensor, fraction: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split training images into (train, validation) at random; the test set is never touched."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).to(images.device)
    n_val = max(1, round(len(images) * fraction))
    return images[order[n_val:]], images[order[:n_val]]


def model_key(recipe: Recipe, kind: str, seed: int, *images: torch.Tensor | None) -> str:
    """The cache key of the recipe's ``kind`` model: a fingerprint of its config, training config (with ``seed``),
    objective and data (``images``; None skipped). Equal keys mean identical training runs, whichever the recipe."""
    spec = {
        "model": recipe.model(kind).to_dict(),
        "train": dataclasses.asdict(recipe.train.replace(seed=seed)),
        "objective": repr(recipe.objective(kind)),
    }
    return fingerprint(spec, *[data for data in images if data is not None])


def train_model(
    recipe: Recipe, kind: str, train_images: torch.Tensor, val_images: torch.Tensor | None, test_images: torch.Tensor,
    device: torch.device | str = "cpu", seed: int = 0, progress: bool | None = None,
    cache_dir: str | Path | None = None,
) -> CachedModel:
    """Train the recipe's ``kind`` model from ``seed`` with :func:`course_lib.train.fit` and score it on the test set.

    With ``cache_dir`` this goes through :func:`course_lib.checkpoints.train_or_load` under :func:`model_key`:
    a finished model is loaded instead of trained, and training checkpoints every :data:`CHECKPOINT_EVERY`
    epochs and resumes exactly after an interruption.
    """
    cfg, objective, desc = recipe.train.replace(seed=seed), recipe.objective(kind), f"{recipe.name} {kind}"
    test_images = test_images.to(device)

    def train(model: Model, partial: Path | None, resume: bool) -> tuple[dict[str, float], list[dict[str, float]]]:
        history = fit(model, train_images, cfg, val_images, objective=objective, checkpoint=partial,
                      checkpoint_every=CHECKPOINT_EVERY, resume=resume, progress=progress, desc=desc)
        return evaluate(model, test_images, seed=seed), history.records

    if cache_dir is None:
        torch.manual_seed(seed)
        model = build_model(recipe.model(kind)).to(device)
        return CachedModel(model, *train(model, None, False), "trained")
    slug = re.sub(r"[^a-z0-9]+", "-", recipe.name.lower()).strip("-")
    key = model_key(recipe, kind, seed, train_images, val_images, test_images)
    return train_or_load(cache_dir, f"{slug}-{kind}", key, recipe.model(kind), train, seed=seed, device=device)


@dataclass
class RecipeResult:
    """What :func:`run_recipe` returns: a flat row of test metrics and costs, the models and their histories."""

    row: dict[str, Any]
    ae: Model
    vae: Model
    ae_history: History
    vae_history: History


ROW_METRICS = {"ae": ("mse", "psnr", "bce"),
               "vae": ("mse", "psnr", "bce", "neg_elbo", "neg_elbo_z_mean", "kl", "active_units")}
"""The test metrics (:func:`course_lib.evaluate.evaluate`) that :func:`run_recipe` puts in its row, per model."""


def run_recipe(
    recipe: Recipe,
    train_images: torch.Tensor,
    val_images: torch.Tensor | None,
    test_images: torch.Tensor,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
) -> RecipeResult:
    """Train the recipe's AE and VAE from the same seed (:func:`train_model`) and score both on the test set.

    ``val_images`` (held out from training) are evaluated after every epoch and drive the plateau
    scheduler; ``test_images`` are used once, at the end. Seconds count training epochs only.
    Row keys: ``config``, ``epochs``, ``batch_size``, then per model ``ae_`` / ``vae_`` + ``params``, the
    :data:`ROW_METRICS` (the VAE's ``neg_elbo`` at beta = 1 whatever it was trained with, nats per image),
    ``seconds``, ``fingerprint`` (:func:`model_key`: rows with equal fingerprints hold the same model) and
    ``cache`` (what :func:`train_model` did: "trained", "loaded ...", "resumed ...").
    """
    row: dict[str, Any] = {"config": recipe.name, "epochs": recipe.train.epochs, "batch_size": recipe.train.batch_size}
    trained: dict[str, CachedModel] = {}
    for kind in KINDS:
        result = train_model(recipe, kind, train_images, val_images, test_images, device, seed, progress, cache_dir)
        row[f"{kind}_fingerprint"] = model_key(recipe, kind, seed, train_images, val_images, test_images)
        row[f"{kind}_cache"] = result.message
        row[f"{kind}_params"] = count_parameters(result.model)
        row |= {f"{kind}_{metric}": result.metrics[metric] for metric in ROW_METRICS[kind]}
        row[f"{kind}_seconds"] = sum(record["seconds"] for record in result.history)
        trained[kind] = result
    ae, vae = trained["ae"], trained["vae"]
    return RecipeResult(row, ae.model, vae.model, History(ae.history), History(vae.history))
