"""Lesson 08: beyond the article. Convolutional AE and VAE at the article's latent size (16) against its improved
MLPs in no more training time, as a ladder of rungs over several seeds; and a VAE whose code is a 4 x 7 x 7 feature
map (a spatial latent, as Stable Diffusion's 64 x 64 x 4), which notebook 08 enters into notebook 06's race.

Every rung trains an AE and a VAE from each seed with the course's ``fit`` and scores them on the test split; the
models are cached in ``outputs/08_beyond`` (:func:`course_lib.checkpoints.train_or_load`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from course_lib import checkpoints
from course_lib.compare import Interval, t_interval
from course_lib.config import by_mode, output_dir
from course_lib.data import Dataset
from course_lib.evaluate import evaluate
from course_lib.losses import BetaVAEObjective, MSEObjective
from course_lib.models import GRID, PRESETS, Model, ModelConfig
from course_lib.report import table
from course_lib.train import IMPROVED_BETA, RECIPES, TrainConfig, fit

FOLDER = "08_beyond"
KINDS = ("ae", "vae")
SEEDS: tuple[int, ...] = by_mode(fast=(0,), reference=(0, 1, 2), full=(0, 1, 2))
ARTICLE_EPOCHS: int = by_mode(fast=10, reference=RECIPES["seed-improved"].epochs, full=RECIPES["seed-improved"].epochs)
CONV_EPOCHS: int = by_mode(fast=2, reference=42, full=42)
"""Epochs of the conv rungs: 42 take about 40 s on a 2-core CPU, the article's 500 epochs about 45 s."""
CONV_LR = 2e-3
"""The conv rungs' learning rate from rung 3 on (the article's is 1e-3)."""
CONV_WIDTHS = (16, 32)
"""Channels of the encoder's two stride-2 convolutions (28 -> 14 -> 7); the decoder mirrors them."""
GOALS = {"ae": ("mse", 0.012), "vae": ("neg_elbo", 105.0)}
"""Issue 16's goals at latent size 16 on mnist-5k: AE test MSE per pixel, VAE test -ELBO in nats per image."""
SPATIAL_CHANNELS = 2
"""Channels of the spatial latent (2 x 7 x 7 = 98 numbers; in trial runs 4 channels sampled worse in equal time)."""
SPATIAL_AE_EPOCHS: int = by_mode(fast=2, reference=20, full=20)
SPATIAL_SNAPSHOTS: tuple[int, ...] = by_mode(fast=(20, 40, 80), reference=(1000, 2000, 4000, 8000, 16000),
                                             full=(1000, 2000, 4000, 8000, 16000))
"""Where the spatial latent's denoiser is judged, in optimizer steps (it stops at the last, which runs past the
MLP latent side's training time to show where its curve is heading)."""


def conv_config(kind: str, latent_dim: int = 16, spatial_latent: bool = False) -> ModelConfig:
    """A conv AE or VAE with :data:`CONV_WIDTHS` channels, LeakyReLU and batch norm (as the article's improved
    models), a ``latent_dim`` code: a vector, or ``latent_dim // 49`` x 7 x 7 maps if ``spatial_latent``."""
    return ModelConfig(kind, latent_dim, CONV_WIDTHS, CONV_WIDTHS[::-1], "leaky_relu", True, "conv", spatial_latent)


SPATIAL_VAE = conv_config("vae", SPATIAL_CHANNELS * GRID**2, spatial_latent=True)
"""The VAE of the spatial latent: 2 x 7 x 7 = 98 numbers per image, 8x fewer than its 784 pixels."""


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder: the AE's and VAE's configs, the training config they share, the VAE's beta."""

    name: str
    change: str
    ae: ModelConfig
    vae: ModelConfig
    train: TrainConfig
    vae_beta: float

    def model(self, kind: str) -> ModelConfig:
        if kind not in KINDS:
            raise ValueError(f"kind must be 'ae' or 'vae', got {kind!r}")
        return self.ae if kind == "ae" else self.vae

    def objective(self, kind: str) -> MSEObjective | BetaVAEObjective:
        return MSEObjective() if kind == "ae" else BetaVAEObjective(self.vae_beta)


def ladder() -> list[Rung]:
    """The article's improved models and recipe, then one change at a time towards the conv models."""
    article = Rung("article's MLPs", "the article's improved models and recipe (04's rung 8 without the errata "
                   f"fixes): {ARTICLE_EPOCHS} epochs of batch 1024, beta {IMPROVED_BETA}",
                   PRESETS["seed-improved-ae"], PRESETS["seed-improved-vae"],
                   RECIPES["seed-improved"].replace(epochs=ARTICLE_EPOCHS), IMPROVED_BETA)
    conv = dataclasses.replace(
        article, name="conv", change=f"convolutions ({CONV_WIDTHS[0]}, {CONV_WIDTHS[1]} channels) at batch 128 for "
        f"{CONV_EPOCHS} epochs (a conv epoch costs about 10 MLP epochs); the article's optimiser, rotations and beta",
        ae=conv_config("ae"), vae=conv_config("vae"), train=article.train.replace(epochs=CONV_EPOCHS, batch_size=128))
    lr = dataclasses.replace(conv, name=f"+ lr {CONV_LR:g}", change=f"learning rate {CONV_LR:g} instead of "
                             f"{conv.train.lr:g}", train=conv.train.replace(lr=CONV_LR))
    beta = dataclasses.replace(lr, name="+ beta 1", change="the VAE trains on the -ELBO it is scored on (beta 1 "
                               f"instead of {IMPROVED_BETA})", vae_beta=1.0)
    return [article, conv, lr, beta]


@dataclass
class Trained:
    """One trained (or loaded) model of a rung: its test metrics, training seconds and cache message."""

    rung: str
    kind: str
    seed: int
    model: Model
    metrics: dict[str, float]
    seconds: float
    message: str


def train_rung(
    rung: Rung, kind: str, data: Dataset, seed: int = 0, folder: str | Path | None = None,
    progress: bool | None = None,
) -> Trained:
    """The rung's ``kind`` model from ``seed``, trained on the training split and scored on the test split, or
    loaded from ``folder`` (default ``outputs/08_beyond``) when this training (configs, seed, data, code) ran
    before. ``seconds`` counts training epochs only; ``progress`` as in ``fit`` (a bar outside fast mode)."""
    folder = Path(folder) if folder is not None else output_dir() / FOLDER
    config, recipe, objective = rung.model(kind), rung.train.replace(seed=seed), rung.objective(kind)
    spec = {"model": config.to_dict(), "train": dataclasses.asdict(recipe), "objective": repr(objective)}
    key = checkpoints.fingerprint(spec, data.train_images, data.test_images)

    def train(model: Model, partial: Path, resume: bool) -> tuple[dict[str, float], list[dict[str, float]]]:
        history = fit(model, data.train_images, recipe, objective=objective, checkpoint=partial, resume=resume,
                      progress=progress, desc=f"{rung.name} {kind} seed {seed}")
        return evaluate(model, data.test_images, seed=seed), history.records

    name = f"{re.sub(r'[^a-z0-9]+', '-', rung.name.lower()).strip('-')}-{kind}-seed{seed}"
    cached = checkpoints.train_or_load(folder, name, key, config, train, seed=seed,
                                       device=data.train_images.device)
    seconds = sum(record["seconds"] for record in cached.history)
    return Trained(rung.name, kind, seed, cached.model.eval(), cached.metrics, seconds, cached.message)


def goal_metric(kind: str) -> str:
    return GOALS[kind][0]


def interval(results: Sequence[Trained], rung: str, kind: str) -> Interval:
    """The mean of the goal's metric over seeds with its 95 % t-interval."""
    return t_interval([r.metrics[goal_metric(kind)] for r in results if r.rung == rung and r.kind == kind])


def seconds(results: Sequence[Trained], rung: str, kind: str) -> list[float]:
    return [r.seconds for r in results if r.rung == rung and r.kind == kind]


def ladder_table(results: Sequence[Trained], rungs: Sequence[Rung]) -> str:
    """Per rung: each model's goal metric (mean over seeds, 95 % interval) and training seconds (median, range)."""
    def metric(rung: str, kind: str) -> str:
        i = interval(results, rung, kind)
        digits = ".4f" if kind == "ae" else ".1f"
        if i.low == -math.inf:  # one seed: no interval
            return f"{i.estimate:{digits}}"
        return f"{i.estimate:{digits}} ({i.low:{digits}}-{i.high:{digits}})"

    def time(rung: str, kind: str) -> str:
        s = seconds(results, rung, kind)
        return f"{statistics.median(s):.0f} ({min(s):.0f}-{max(s):.0f})"

    rows = [{"rung": r.name, "ae": metric(r.name, "ae"), "ae_s": time(r.name, "ae"), "vae": metric(r.name, "vae"),
             "vae_s": time(r.name, "vae")} for r in rungs]
    return table(rows, [("rung", "rung", str), ("ae", "AE test MSE (95% CI)", str), ("ae_s", "AE train s", str),
                        ("vae", "VAE test -ELBO, nats (95% CI)", str), ("vae_s", "VAE train s", str)])


@dataclass(frozen=True)
class GoalVerdict:
    """Whether ``rung``'s ``kind`` model meets its goal (the whole 95 % interval at or below it) in no more
    training time than the article's (every seed's seconds at or below the article's median)."""

    rung: str
    kind: str
    interval: Interval
    goal: float
    seconds: tuple[float, ...]
    article_seconds: float

    @property
    def quality(self) -> bool:
        return self.interval.high <= self.goal

    @property
    def in_time(self) -> bool:
        return max(self.seconds) <= self.article_seconds

    @property
    def text(self) -> str:
        metric = goal_metric(self.kind)
        ok = self.quality and self.in_time
        spread = (f"95% CI {self.interval.low:.4g}-{self.interval.high:.4g}" if math.isfinite(self.interval.low)
                  else "one seed: no interval")
        return (f"[{'met' if ok else 'not met'}] {self.kind.upper()} {metric} {self.interval.estimate:.4g} "
                f"({spread}; goal <= {self.goal:g}) in at most {max(self.seconds):.0f} s of training (article's "
                f"recipe: {self.article_seconds:.0f} s)")


def goal_verdicts(results: Sequence[Trained], rung: str, article: str) -> list[GoalVerdict]:
    """The goals checked on ``rung`` against the article's rung, for the AE and the VAE."""
    return [GoalVerdict(rung, kind, interval(results, rung, kind), GOALS[kind][1],
                        tuple(seconds(results, rung, kind)), statistics.median(seconds(results, article, kind)))
            for kind in KINDS]


class Point(Protocol):
    """A judged snapshot of a race side (``pixel_vs_latent.CurvePoint``)."""

    step: int
    seconds: float
    fld: float


@dataclass(frozen=True)
class BudgetVerdict:
    """The spatial side's best FLD within the rival side's training time, against the best FLD the rival had
    reached by the same seconds."""

    spatial: Point | None
    rival: Point | None
    noise: float
    holds: bool
    text: str


def budget_verdict(spatial: Sequence[Point], rival: Sequence[Point], noise: float = 0.0) -> BudgetVerdict:
    """Does the spatial side reach a better FLD than the rival (the MLP latent side) at the same budget?

    The budget is the rival's whole training time (its last snapshot's seconds), beyond which its curve is not
    measured. The spatial side's best snapshot within it is compared with the rival's best snapshot at or before
    the same seconds; the claim holds when the spatial FLD is lower by more than ``noise`` (the FLD spread of one
    sample set), or when the rival had no snapshot yet."""
    budget = rival[-1].seconds
    within = [p for p in spatial if p.seconds <= budget]
    if not within:
        return BudgetVerdict(None, None, noise, False, f"[inconclusive] the spatial side has no snapshot within the "
                             f"rival's {budget:.3g} s of training")
    best = min(within, key=lambda p: p.fld)
    earlier = [p for p in rival if p.seconds <= best.seconds]
    rival_best = min(earlier, key=lambda p: p.fld) if earlier else None
    holds = rival_best is None or best.fld + noise < rival_best.fld
    versus = (f"the MLP latent's best by then: FLD {rival_best.fld:.3g} at {rival_best.seconds:.3g} s"
              if rival_best else "the MLP latent side had no snapshot by then")
    return BudgetVerdict(best, rival_best, noise, holds,
                         f"[{'holds' if holds else 'does not hold'}] spatial latent: FLD {best.fld:.3g} after "
                         f"{best.seconds:.3g} s of training; {versus} (sampling noise {noise:.2g}; budget: the MLP "
                         f"latent side's {budget:.3g} s)")
