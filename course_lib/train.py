"""Training an AE or VAE: :func:`train_epoch` is the whole idea; :func:`fit` runs it for many epochs with
history, held-out evaluation, a learning-rate schedule, a progress bar, checkpoints and divergence handling."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib import config as course_config
from course_lib.augment import Augmentation
from course_lib.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from course_lib.data import BatchIterator, check_images
from course_lib.evaluate import evaluate
from course_lib.losses import Objective, default_objective

OPTIMIZERS = ("adam", "adamw")
PLATEAU_TARGETS = ("train", "test")


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, schedule, epochs, batch, augmentation, seed (the loss is the objective's).

    ``plateau_on="train"`` reproduces the article (it steps the scheduler on the training loss);
    ``"test"`` steps it on the held-out images passed to :func:`fit`.
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    plateau_scheduler: bool = False
    plateau_on: str = "test"
    plateau_patience: int = 10
    plateau_factor: float = 0.5
    rotation_degrees: float = 0.0
    noise_std: float = 0.0
    seed: int = 0
    eval_every: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError("epochs, batch_size and eval_every must be >= 1")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.plateau_on not in PLATEAU_TARGETS:
            raise ValueError(f"plateau_on must be 'train' or 'test', got {self.plateau_on!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0 < self.plateau_factor < 1 or self.plateau_patience < 0:
            raise ValueError("plateau_factor must lie in (0, 1) and plateau_patience be >= 0")

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(self.rotation_degrees, self.noise_std)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed, e.g. ``recipe.replace(epochs=5)``."""
        return TrainConfig(**(asdict(self) | changes))


RECIPES: dict[str, TrainConfig] = {
    "seed-baseline": TrainConfig(epochs=200, batch_size=128, optimizer="adam", lr=1e-4),
    "seed-improved": TrainConfig(
        epochs=500,
        batch_size=1024,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-5,
        plateau_scheduler=True,
        plateau_on="train",
        rotation_degrees=10.0,
    ),
}
"""The article's two training recipes. Its improved VAE also weights the KL term by :data:`IMPROVED_BETA`."""
IMPROVED_BETA = 0.5
"""The article's improved VAE minimises ``BetaVAEObjective(IMPROVED_BETA)``."""


@dataclass
class History:
    """Per-epoch records: epoch, train_loss, test metrics (see :func:`course_lib.evaluate.evaluate`), lr, seconds."""

    records: list[dict[str, float]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        return [r[key] for r in self.records if key in r]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def last(self) -> dict[str, float]:
        return self.records[-1]


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, ...]],
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    augmentation: Augmentation,
    generator: torch.Generator,
) -> float:
    """One pass over the training batches; returns the mean loss per image.

    The model sees the augmented batch and is scored against the clean (only rotated) one, so noise
    augmentation teaches it to denoise. ``generator`` draws the augmentation and the VAE's z.
    """
    model.train()
    total, count = 0.0, 0
    for (batch,) in batches:
        inputs, targets = augmentation.inputs_and_targets(batch, generator)
        loss = objective(model, inputs, targets, generator)  # one value per image
        optimizer.zero_grad(set_to_none=True)
        loss.mean().backward()
        optimizer.step()
        total += loss.detach().sum()
        count += len(batch)
    return float(total) / count


def held_out_loss(model: nn.Module, images: torch.Tensor, objective: Objective, seed: int = 0) -> float:
    """The training objective on held-out images (eval mode, no augmentation, z drawn with ``seed``)."""
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    with torch.no_grad():
        return sum(objective(model, b, b, generator).sum().item() for b in images.split(1000)) / len(images)


def training_parts(
    model: nn.Module, images: torch.Tensor, cfg: TrainConfig
) -> tuple[BatchIterator, torch.optim.Optimizer, torch.Generator]:
    """What :func:`train_epoch` needs, seeded from ``cfg`` as :func:`fit` seeds it: shuffled batches of
    ``images`` (on the model's device), the optimizer, and the generator for augmentation and z."""
    device = next(model.parameters()).device
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                    **course_config.optimizer_kernel(device))
    batches = BatchIterator(images.to(device), batch_size=cfg.batch_size, seed=cfg.seed)
    return batches, optimizer, torch.Generator(device=device).manual_seed(cfg.seed + 1)


def fit(
    model: nn.Module,
    train_images: torch.Tensor,
    cfg: TrainConfig,
    test_images: torch.Tensor | None = None,
    objective: Objective | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    progress: bool | None = None,
    desc: str | None = None,
) -> History:
    """Train ``model`` in place with :func:`train_epoch` for ``cfg.epochs`` epochs; return its history.

    ``objective`` defaults to MSE for an AE and the negative ELBO for a VAE. Held-out ``test_images`` are
    evaluated every ``cfg.eval_every`` epochs, never augmented. A non-finite loss raises
    :class:`TrainingDivergedError` after restoring the last good epoch's weights. With ``checkpoint``, the
    whole training state is saved every ``checkpoint_every`` epochs and at the end; ``resume=True`` continues
    that file's run exactly. ``progress`` defaults to a tqdm bar outside fast mode.
    """
    check_images(train_images)
    if len(train_images) == 0:
        raise ValueError("fit needs at least one training image, got 0")
    if test_images is not None:
        check_images(test_images)
    if cfg.plateau_scheduler and cfg.plateau_on == "test" and test_images is None:
        raise ValueError("plateau_on='test' needs test_images")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    device = next(model.parameters()).device
    test_images = test_images.to(device) if test_images is not None else None
    objective = objective or default_objective(model)

    batches, optimizer, generator = training_parts(model, train_images, cfg)
    scheduler = None
    if cfg.plateau_scheduler:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, patience=cfg.plateau_patience, factor=cfg.plateau_factor
        )
    run = {"train_config": asdict(cfg), "objective": repr(objective)}
    history = History()
    if resume:
        history = _restore(checkpoint, model, optimizer, scheduler, batches, generator, run)

    show = course_config.MODE != "fast" if progress is None else progress
    bar = tqdm(range(len(history) + 1, cfg.epochs + 1), desc=desc or type(model).__name__, disable=not show)
    for epoch in bar:
        good_state = copy.deepcopy(model.state_dict())
        started = time.perf_counter()
        train_loss = train_epoch(model, batches, objective, optimizer, cfg.augmentation, generator)
        if not math.isfinite(train_loss):
            model.load_state_dict(good_state)
            raise TrainingDivergedError(
                f"the training loss became {train_loss} in epoch {epoch}. Likely causes: a learning rate too "
                f"high (lr={cfg.lr}), inputs outside [0, 1] for the BCE loss, or an exploding log-variance "
                f"(large beta or no batch norm). The model's weights were restored to the end of epoch "
                f"{epoch - 1}." + (f" The last good checkpoint is kept at {checkpoint}." if checkpoint else "")
            )
        record = {"epoch": epoch, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"],
                  "seconds": time.perf_counter() - started}
        if test_images is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            record |= {f"test_{k}": v for k, v in evaluate(model, test_images, seed=cfg.seed).items()}
            record["test_loss"] = held_out_loss(model, test_images, objective, seed=cfg.seed)
        history.records.append(record)
        if scheduler is not None:
            target = record.get("train_loss" if cfg.plateau_on == "train" else "test_loss")
            if target is not None:
                scheduler.step(target)
        bar.set_postfix({k: f"{record[k]:.4g}" for k in ("train_loss", "test_loss") if k in record})
        if checkpoint is not None and (epoch % checkpoint_every == 0 or epoch == cfg.epochs):
            state = {"optimizer": optimizer.state_dict(), "history": history.records, **run,
                     "scheduler": scheduler.state_dict() if scheduler is not None else None,
                     "batch_generator": batches.generator.get_state(), "generator": generator.get_state().cpu()}
            save_checkpoint(checkpoint, model, training_state=state)
    return history


def _restore(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batches: BatchIterator,
    generator: torch.Generator,
    run: dict[str, Any],
) -> History:
    """Load a checkpoint written by :func:`fit` into the live objects; return the history so far.

    Only the number of epochs may differ from the stored run (to train it for longer)."""
    device = generator.get_state().device
    _, payload = load_checkpoint(path, expected=model.config, map_location=next(model.parameters()).device)
    state = payload["training_state"]
    if not state or "optimizer" not in state:
        raise CheckpointError(f"{path} has no training state to resume from")
    stored = {**state.get("train_config", {}), "epochs": None, "objective": state.get("objective")}
    if stored != {**run["train_config"], "epochs": None, "objective": run["objective"]}:
        raise CheckpointError(f"{path} is a run with another training config or objective; it cannot be resumed")
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    batches.generator.set_state(state["batch_generator"])
    generator.set_state(state["generator"].to(device))
    return History(list(state["history"]))
