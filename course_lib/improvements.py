"""The seed article's eight improvements as data: a ladder (add them one at a time) and leave-one-out.

A :class:`Recipe` is everything one rung trains: the AE's and the VAE's :class:`ModelConfig` and one
:class:`TrainConfig` (the VAE uses its ``beta``; the AE ignores it). Each :class:`Improvement` changes its
own fields of a recipe and nothing else, so the ladder's last rung and every leave-one-out recipe are
well defined whatever the order.

Two of the article's errata are fixed here, and only these: improvement 7 adds noise as well as rotation
(erratum 2, ``noise_std`` = :data:`NOISE_STD`), and the plateau scheduler watches a held-out validation
loss instead of the training loss (erratum 5, ``plateau_on="test"``; :func:`run_recipe` passes a
validation split carved from the training images, never the test set).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_lib.checkpoints import load_checkpoint, save_checkpoint
from course_lib.evaluate import evaluate
from course_lib.models import PRESETS, Model, ModelConfig, build_model, count_parameters
from course_lib.train import RECIPES, History, TrainConfig, fit

NOISE_STD = 0.05
"""Standard deviation of the training noise of improvement 7 (the article promises noise but gives no value)."""


@dataclass(frozen=True)
class Recipe:
    """One configuration to train: AE and VAE model configs and the shared training config."""

    name: str
    ae: ModelConfig
    vae: ModelConfig
    train: TrainConfig

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Improvement:
    """One of the article's eight changes: a short label, what it sets, and the function that applies it."""

    key: str
    label: str
    description: str
    apply: Callable[[Recipe], Recipe]


def _models(recipe: Recipe, **changes: Any) -> Recipe:
    return recipe.replace(ae=dataclasses.replace(recipe.ae, **changes), vae=dataclasses.replace(recipe.vae, **changes))


def _train(recipe: Recipe, **changes: Any) -> Recipe:
    return recipe.replace(train=recipe.train.replace(**changes))


def _deeper_wider(recipe: Recipe) -> Recipe:
    improved_ae, improved_vae = PRESETS["seed-improved-ae"], PRESETS["seed-improved-vae"]
    return recipe.replace(
        ae=dataclasses.replace(
            recipe.ae, encoder_widths=improved_ae.encoder_widths, decoder_widths=improved_ae.decoder_widths
        ),
        vae=dataclasses.replace(
            recipe.vae, encoder_widths=improved_vae.encoder_widths, decoder_widths=improved_vae.decoder_widths
        ),
    )


IMPROVEMENTS: tuple[Improvement, ...] = (
    Improvement("latent16", "+latent 16", "latent dimension 3 -> 16", lambda r: _models(r, latent_dim=16)),
    Improvement(
        "deeper_wider",
        "+deeper/wider",
        "AE 784-256-128-64-z, VAE 784-256-128-z (decoders mirrored)",
        _deeper_wider,
    ),
    Improvement("leaky_relu", "+LeakyReLU", "LeakyReLU instead of ReLU", lambda r: _models(r, activation="leaky_relu")),
    Improvement(
        "batch_norm", "+batch norm", "BatchNorm1d after every hidden layer", lambda r: _models(r, batch_norm=True)
    ),
    Improvement(
        "adamw_plateau",
        "+AdamW & plateau",
        "AdamW lr 1e-3, weight decay 1e-5; ReduceLROnPlateau (patience 10, factor 0.5) on a validation loss",
        lambda r: _train(
            r,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=1e-5,
            plateau_scheduler=True,
            plateau_on="test",
            plateau_patience=10,
            plateau_factor=0.5,
        ),
    ),
    Improvement(
        "epochs_batch",
        "+500 epochs, batch 1024",
        "500 epochs, batch 1024",
        lambda r: _train(r, epochs=500, batch_size=1024),
    ),
    Improvement(
        "augmentation",
        "+augmentation",
        f"random rotation +-10 degrees and Gaussian noise (std {NOISE_STD}) on training batches",
        lambda r: _train(r, rotation_degrees=10.0, noise_std=NOISE_STD),
    ),
    Improvement("beta", "+beta 0.5", "beta = 0.5 on the VAE's KL term", lambda r: _train(r, beta=0.5)),
)
"""The article's eight improvements, in its order."""

IMPROVEMENT_KEYS = tuple(i.key for i in IMPROVEMENTS)


def baseline_recipe() -> Recipe:
    """The article's baseline: presets seed-baseline-ae / -vae and the seed-baseline training recipe."""
    return Recipe("baseline", PRESETS["seed-baseline-ae"], PRESETS["seed-baseline-vae"], RECIPES["seed-baseline"])


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
    for part in ("ae", "vae", "train"):
        a, b = dataclasses.asdict(getattr(before, part)), dataclasses.asdict(getattr(after, part))
        for field in a:
            if a[field] != b[field]:
                diff[f"{part}.{field}"] = (a[field], b[field])
    return diff


def scale_epochs(recipe: Recipe, divisor: int = 1, minimum: int = 1) -> Recipe:
    """The recipe with ``max(minimum, epochs // divisor)`` epochs (FAST mode keeps the ratio between recipes)."""
    if divisor < 1 or minimum < 1:
        raise ValueError("divisor and minimum must be >= 1")
    return _train(recipe, epochs=max(minimum, recipe.train.epochs // divisor))


def split_validation(images: torch.Tensor, fraction: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split training images into (train, validation) at random; the test set is never touched."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).to(images.device)
    n_val = max(1, round(len(images) * fraction))
    return images[order[n_val:]], images[order[:n_val]]


@dataclass
class RecipeResult:
    """What :func:`run_recipe` returns: a flat row of test metrics and costs, the models and their histories."""

    row: dict[str, Any]
    ae: Model
    vae: Model
    ae_history: History
    vae_history: History


CHECKPOINT_EVERY = 10
"""With a cache folder, :func:`run_recipe` checkpoints a model's training every this many epochs."""


def training_spec(recipe: Recipe, kind: str, seed: int) -> dict[str, Any]:
    """Everything but the data that one of a recipe's models (``kind``) is trained from: configs and seed.

    The AE ignores ``beta``, so recipes that differ only in ``beta`` have the same AE spec.
    """
    if kind not in ("ae", "vae"):
        raise ValueError(f"kind must be 'ae' or 'vae', got {kind!r}")
    train = recipe.train.replace(seed=seed, **({"beta": 1.0} if kind == "ae" else {}))
    model = recipe.ae if kind == "ae" else recipe.vae
    return {"model": model.to_dict(), "train": dataclasses.asdict(train)}


def model_fingerprint(recipe: Recipe, kind: str, seed: int, *image_sets: torch.Tensor) -> str:
    """A short hash of :func:`training_spec` and the images: equal hashes mean identical training runs."""
    content = training_spec(recipe, kind, seed) | {
        "images": [[list(images.shape), round(float(images.sum(dtype=torch.float64)), 3)] for images in image_sets],
    }
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]


def _cached(cache_dir: Path, fingerprint: str, suffix: str) -> Path | None:
    """The cache file of this training run, whichever recipe's name it was saved under."""
    return min(cache_dir.glob(f"*_{fingerprint}_{suffix}"), default=None)


def run_recipe(
    recipe: Recipe,
    train_images: torch.Tensor,
    val_images: torch.Tensor,
    test_images: torch.Tensor,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
) -> RecipeResult:
    """Train the recipe's AE and VAE from the same seed and score both on the test set.

    ``val_images`` (held out from training) are evaluated after every epoch and drive the plateau
    scheduler; ``test_images`` are used once, at the end. Seconds count training epochs only.
    Row keys: ``config``, ``epochs``, ``batch_size``, ``ae_params``, ``vae_params``, ``ae_mse``,
    ``ae_psnr``, ``ae_bce``, ``vae_mse``, ``vae_psnr``, ``vae_bce``, ``vae_neg_elbo`` (beta = 1, nats per
    image), ``vae_kl``, ``vae_active_units``, ``ae_seconds``, ``vae_seconds``, and ``ae_fingerprint``,
    ``vae_fingerprint`` (:func:`model_fingerprint`: rows with equal fingerprints hold the same model).

    With ``cache_dir``, nothing is lost and nothing is trained twice: a finished model is saved there and
    loaded on the next call (its row and training seconds included), by this recipe or any other whose model
    has the same fingerprint; a model in training is checkpointed every :data:`CHECKPOINT_EVERY` epochs and
    resumed exactly from there. A changed model, training config, seed or data set never loads another run's model.
    """
    cfg = recipe.train.replace(seed=seed)
    row: dict[str, Any] = {"config": recipe.name, "epochs": cfg.epochs, "batch_size": cfg.batch_size}
    trained: dict[str, tuple[Model, History]] = {}
    slug = re.sub(r"[^a-z0-9]+", "-", recipe.name.lower()).strip("-")
    cache = Path(cache_dir) if cache_dir is not None else None
    for kind, model_config in (("ae", recipe.ae), ("vae", recipe.vae)):
        fingerprint = model_fingerprint(recipe, kind, seed, train_images, val_images, test_images)
        row[f"{kind}_fingerprint"] = fingerprint
        final = _cached(cache, fingerprint, f"{kind}.pt") if cache is not None else None
        if final is not None:
            model, payload = load_checkpoint(final, expected=model_config, map_location=device)
            model.to(device)
            metrics, history = payload["metrics"], History(list(payload["training_state"]["history"]))
            shared = "" if final.name.startswith(f"{slug}_") else " (same model, training and data as this one)"
            print(f"{recipe.name} {kind}: loaded {final.name}{shared}")
        else:
            torch.manual_seed(seed)
            model = build_model(model_config).to(device)
            run_cfg, partial, resume = cfg, None, None
            if cache is not None:
                resume = _cached(cache, fingerprint, f"{kind}.partial.pt")
                partial = resume or cache / f"{slug}_{fingerprint}_{kind}.partial.pt"
                run_cfg = cfg.replace(checkpoint_every=CHECKPOINT_EVERY, checkpoint_path=str(partial))
            history = fit(model, train_images, run_cfg, val_images, resume_from=resume, progress=progress,
                          desc=f"{recipe.name} {kind}")
            metrics = evaluate(model, test_images.to(device), seed=seed)
            if cache is not None:
                final = partial.with_name(partial.name.replace(".partial.pt", ".pt"))
                save_checkpoint(final, model, metrics=metrics, training_state={"history": history.records})
                partial.unlink(missing_ok=True)
                resumed = f" (resumed from {resume.name})" if resume else ""
                print(f"{recipe.name} {kind}: trained{resumed}, saved {final.name}")
        row[f"{kind}_params"] = count_parameters(model)
        for key in ("mse", "psnr", "bce") + (("neg_elbo", "kl", "active_units") if kind == "vae" else ()):
            row[f"{kind}_{key}"] = metrics[key]
        row[f"{kind}_seconds"] = sum(history["seconds"])
        trained[kind] = (model, history)
    return RecipeResult(row, trained["ae"][0], trained["vae"][0], trained["ae"][1], trained["vae"][1])


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """A plain-text table: ``columns`` are (row key, header, format spec), e.g. ("ae_mse", "AE MSE", ".4f")."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append([format(row[key], spec) for key, _, spec in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
