"""Notebook 07's training runs: every model the claims are measured on, trained once and cached.

A :class:`Run` says what one model is (AE or VAE, seed, beta, learning rate) and what it is trained on (all training
digits, all but one digit, a corrupted copy, a small subset). :func:`train_run` trains it with the course's ``fit``
or loads it from ``outputs/07_claims`` (:func:`course_lib.checkpoints.train_or_load`, keyed by the run, the data
and the training code). A run whose loss diverges is kept, marked ``diverged``: instability is one of the claims.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from course_lib import checkpoints
from course_lib.config import by_mode, output_dir
from course_lib.data import DEBIAN_FASHION_MNIST, Dataset, load_dataset
from course_lib.evaluate import evaluate
from course_lib.experiments.claims import corrupt_fraction
from course_lib.losses import BCEObjective, BetaVAEObjective, MSEObjective, Objective
from course_lib.models import Model, preset_config
from course_lib.train import IMPROVED_BETA, TrainConfig, TrainingDivergedError, fit

SEEDS: tuple[int, ...] = by_mode(fast=(0, 1, 2), reference=(0, 1, 2), full=(0, 1, 2))
"""Training seeds of every repeated measurement (at least 3, so that seed-to-seed spread can be estimated)."""
EPOCHS: int = by_mode(fast=4, reference=50, full=20)
"""Epochs of every model trained on all training digits (the article's optimiser, batch 128)."""
SUBSET: int = 500
"""Training digits of the overfitting test (a seeded random subset)."""
SUBSET_EPOCHS: int = by_mode(fast=20, reference=200, full=200)
LEARNING_RATES: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
"""The learning rates of the instability test (1e-3 is the article's)."""
BETAS: tuple[float, ...] = (IMPROVED_BETA, 1.0, 2.0, 4.0)
"""The KL weights of the posterior-collapse test (0.5 is the article's improved VAE)."""
OUTLIER_FRACTION = 0.05
"""Share of training digits replaced by realistic outliers in the outlier test."""
FOLDER = "07_claims"


@dataclass(frozen=True)
class Run:
    """One model of notebook 07: what it is and what it is trained on.

    ``held_out``: a digit left out of training (anomaly test); ``outliers``: OUTLIER_FRACTION of the training
    digits replaced by realistic outliers; ``subset``: train on that many digits only (overfitting test);
    ``loss="bce"``: an AE trained on binary cross-entropy, the VAE's reconstruction loss.
    """

    kind: str
    seed: int = 0
    beta: float = IMPROVED_BETA
    lr: float = 1e-3
    held_out: int | None = None
    outliers: bool = False
    subset: int | None = None
    loss: str = "default"

    def __post_init__(self) -> None:
        if self.kind not in ("ae", "vae"):
            raise ValueError(f"kind must be 'ae' or 'vae', got {self.kind!r}")
        if self.loss not in ("default", "bce") or (self.loss == "bce" and self.kind != "ae"):
            raise ValueError(f"loss must be 'default', or 'bce' for an AE, got {self.loss!r} for {self.kind}")

    @property
    def name(self) -> str:
        parts = [self.kind.upper(), f"seed {self.seed}"]
        parts += [f"beta {self.beta:g}"] if self.kind == "vae" and self.beta != IMPROVED_BETA else []
        parts += [f"lr {self.lr:g}"] if self.lr != 1e-3 else []
        parts += [f"without {self.held_out}"] if self.held_out is not None else []
        parts += ["with outliers"] if self.outliers else []
        parts += [f"{self.subset} digits"] if self.subset else []
        parts += ["BCE"] if self.loss == "bce" else []
        return ", ".join(parts)

    def objective(self) -> Objective:
        if self.kind == "vae":
            return BetaVAEObjective(self.beta)
        return BCEObjective() if self.loss == "bce" else MSEObjective()

    def recipe(self) -> TrainConfig:
        """The article's improved optimiser (AdamW, weight decay 1e-5) at batch 128, no scheduler or rotations."""
        epochs = SUBSET_EPOCHS if self.subset else EPOCHS
        return TrainConfig(epochs=epochs, batch_size=128, optimizer="adamw", lr=self.lr, weight_decay=1e-5,
                           seed=self.seed)


def fashion_images() -> torch.Tensor | None:
    """Fashion-MNIST's test images where Debian's dataset-fashion-mnist is installed, else None."""
    if not DEBIAN_FASHION_MNIST.exists():
        return None
    return load_dataset("fashion-mnist", download=False).test_images


def training_images(run: Run, data: Dataset, fashion: torch.Tensor | None = None) -> torch.Tensor:
    """The images ``run`` trains on."""
    images, labels = data.train_images, data.train_labels
    if run.held_out is not None:
        images = images[labels != run.held_out]
    if run.outliers:
        images = corrupt_fraction(images, OUTLIER_FRACTION, seed=run.seed, fashion=fashion)[0]
    if run.subset:
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(run.seed))
        images = images[order[: run.subset].to(images.device)]
    return images


@dataclass
class TrainedRun:
    """A trained (or loaded) model of a :class:`Run`, its test metrics and per-epoch history."""

    run: Run
    model: Model
    metrics: dict[str, float]
    history: list[dict[str, float]]
    message: str

    @property
    def diverged(self) -> bool:
        return bool(self.metrics.get("diverged", 0.0))


def train_run(
    run: Run, data: Dataset, folder: str | Path | None = None, fashion: torch.Tensor | None = None,
    progress: bool | None = False,
) -> TrainedRun:
    """The model of ``run``, loaded from ``folder`` (default ``outputs/07_claims``) or trained and cached there.

    Test metrics (:func:`course_lib.evaluate.evaluate` on the test split) are measured after every epoch; a loss
    that becomes non-finite ends training with the last good weights and ``metrics["diverged"] = 1``."""
    folder = Path(folder) if folder is not None else output_dir() / FOLDER
    images = training_images(run, data, fashion)
    config = preset_config(f"seed-improved-{run.kind}")
    recipe = run.recipe()
    key = checkpoints.fingerprint({"run": asdict(run), "recipe": asdict(recipe), "dataset": data.name},
                                  images, data.test_images)

    def train(model: Model, partial: Path, resume: bool) -> tuple[dict[str, float], list[dict[str, float]]]:
        try:
            history = fit(model, images, recipe, data.test_images, objective=run.objective(), checkpoint=partial,
                          resume=resume, progress=progress, desc=run.name).records
            diverged = 0.0
        except TrainingDivergedError:
            history, diverged = [], 1.0
        return evaluate(model, data.test_images, seed=run.seed) | {"diverged": diverged}, history

    cached = checkpoints.train_or_load(folder, run.name.replace(", ", "_").replace(" ", "-"), key, config, train,
                                       seed=run.seed, device=data.train_images.device)
    return TrainedRun(run, cached.model.eval(), cached.metrics, cached.history, cached.message)


def main_runs(kind: str) -> list[Run]:
    """The model of each seed, trained on all training digits."""
    return [Run(kind, seed) for seed in SEEDS]


def held_out_runs(kind: str) -> list[Run]:
    """One model per digit, trained on the other nine (seed = the digit)."""
    return [Run(kind, seed=digit, held_out=digit) for digit in range(10)]


def outlier_runs(kind: str) -> list[Run]:
    return [Run(kind, seed, outliers=True) for seed in SEEDS]


def subset_runs(kind: str) -> list[Run]:
    """The overfitting test: both kinds on the same SUBSET digits, both trained on cross-entropy."""
    return [Run(kind, seed, subset=SUBSET, loss="bce" if kind == "ae" else "default") for seed in SEEDS]


def learning_rate_runs(kind: str) -> list[Run]:
    return [replace(run, lr=lr) for lr in LEARNING_RATES for run in main_runs(kind)]


def beta_runs() -> list[Run]:
    return [Run("vae", seed, beta=beta) for beta in BETAS for seed in SEEDS]
