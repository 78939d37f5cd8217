"""One training loop for AE and VAE: device-resident batches, on-device augmentation, history, checkpoints."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib import config as course_config
from course_lib import losses
from course_lib.augment import Augmentation
from course_lib.checkpoints import load_checkpoint, save_checkpoint
from course_lib.data import BatchIterator, check_images
from course_lib.device import optimizer_kernel
from course_lib.evaluate import evaluate
from course_lib.models import is_vae

OPTIMIZERS = ("adam", "adamw")
PLATEAU_TARGETS = ("train", "test")


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, schedule, epochs, batch, beta (VAE), augmentation, seed, checkpoints.

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
    beta: float = 1.0
    rotation_degrees: float = 0.0
    noise_std: float = 0.0
    seed: int = 0
    eval_every: int = 1
    checkpoint_every: int = 0
    checkpoint_path: str | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.plateau_on not in PLATEAU_TARGETS:
            raise ValueError(f"plateau_on must be 'train' or 'test', got {self.plateau_on!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.checkpoint_every and not self.checkpoint_path:
            raise ValueError("checkpoint_every needs a checkpoint_path")

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
        beta=0.5,
    ),
}
"""The article's two training recipes (the VAE uses ``beta``; the AE ignores it)."""


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


def training_loss(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, beta: float, generator: torch.Generator
) -> torch.Tensor:
    """Per-image loss of a batch: MSE per pixel for an AE, BCE + beta * KL (nats) for a VAE.

    ``inputs`` go into the model, ``targets`` are what it should rebuild (the same tensor without noise
    augmentation).
    """
    if is_vae(model):
        x_hat, mu, logvar = model(inputs, generator)
        return losses.beta_vae_loss(x_hat, targets, mu, logvar, beta)
    return losses.mse_per_pixel(model(inputs), targets)


def _test_loss(metrics: dict[str, float], vae: bool, beta: float) -> float:
    """The training objective on held-out data: MSE, or BCE(sampled z) + beta * KL."""
    return metrics["neg_elbo"] - (1.0 - beta) * metrics["kl"] if vae else metrics["mse"]


def _make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    fast_kwargs = optimizer_kernel(device)
    return cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **fast_kwargs)


def fit(
    model: nn.Module,
    train_images: torch.Tensor,
    cfg: TrainConfig,
    test_images: torch.Tensor | None = None,
    resume_from: str | Path | None = None,
    progress: bool | None = None,
    desc: str | None = None,
) -> History:
    """Train ``model`` in place on ``train_images`` (moved to the model's device) and return its history.

    Test images are evaluated every ``cfg.eval_every`` epochs, never augmented. A non-finite loss stops
    training with :class:`TrainingDivergedError`, after restoring the weights of the last good epoch;
    the last good checkpoint file (if any) is kept. ``resume_from`` continues a checkpointed run exactly.
    ``progress`` defaults to a tqdm bar outside FAST mode.
    """
    check_images(train_images)
    if test_images is not None:
        check_images(test_images)
    if cfg.plateau_scheduler and cfg.plateau_on == "test" and test_images is None:
        raise ValueError("plateau_on='test' needs test_images")
    device = next(model.parameters()).device
    train_images = train_images.to(device)
    test_images = test_images.to(device) if test_images is not None else None
    vae = is_vae(model)

    batches = BatchIterator(train_images, batch_size=cfg.batch_size, seed=cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    augmentation = cfg.augmentation
    optimizer = _make_optimizer(model, cfg, device)
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, patience=cfg.plateau_patience, factor=cfg.plateau_factor
        )
        if cfg.plateau_scheduler
        else None
    )
    history = History()
    start_epoch = 1
    if resume_from is not None:
        _, payload = load_checkpoint(resume_from, expected=model.config, map_location=device)
        state = payload["training_state"]
        if state is None:
            raise ValueError(f"{resume_from} has no training state to resume from")
        model.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        batches.generator.set_state(state["batch_generator"])
        generator.set_state(state["generator"].to(generator.get_state().device))
        history = History(list(state["history"]))
        start_epoch = int(state["epoch"]) + 1

    step = torch.compile(training_loss) if cfg.compile else training_loss
    show = (not course_config.FAST) if progress is None else progress
    bar = tqdm(range(start_epoch, cfg.epochs + 1), desc=desc or type(model).__name__, disable=not show)
    for epoch in bar:
        good_state = copy.deepcopy(model.state_dict())
        started = time.perf_counter()
        model.train()
        total = torch.zeros((), device=device)
        for (batch,) in batches:
            inputs, targets = augmentation.inputs_and_targets(batch, generator)
            loss = step(model, inputs, targets, cfg.beta, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.mean().backward()
            optimizer.step()
            total += loss.detach().sum()
        train_loss = total.item() / len(train_images)
        if not math.isfinite(train_loss):
            model.load_state_dict(good_state)
            kept = f" The last good checkpoint is kept at {cfg.checkpoint_path}." if cfg.checkpoint_path else ""
            raise TrainingDivergedError(
                f"the training loss became {train_loss} in epoch {epoch}. Likely causes: a learning rate too "
                f"high (lr={cfg.lr}), inputs outside [0, 1] for the BCE loss, or an exploding log-variance "
                f"(large beta or no batch norm). The model's weights were restored to the end of epoch "
                f"{epoch - 1}.{kept}"
            )
        record: dict[str, float] = {"epoch": epoch, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"]}
        record["seconds"] = time.perf_counter() - started
        if test_images is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            metrics = evaluate(model, test_images, seed=cfg.seed)
            record |= {f"test_{k}": v for k, v in metrics.items()}
            record["test_loss"] = _test_loss(metrics, vae, cfg.beta)
        history.records.append(record)
        if scheduler is not None:
            target = record["train_loss"] if cfg.plateau_on == "train" else record.get("test_loss")
            if target is not None:
                scheduler.step(target)
        bar.set_postfix({k: f"{record[k]:.4g}" for k in ("train_loss", "test_loss") if k in record})
        if cfg.checkpoint_every and (epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs):
            save_checkpoint(
                cfg.checkpoint_path,
                model,
                metrics={k: v for k, v in record.items() if k.startswith("test_")},
                training_state={
                    "epoch": epoch,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "batch_generator": batches.generator.get_state(),
                    "generator": generator.get_state().cpu(),
                    "history": history.records,
                    "train_config": asdict(cfg),
                },
            )
    return history
