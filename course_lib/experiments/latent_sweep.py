"""Lesson 05's sweep: VAEs over latent dimension x beta, plus an AE for comparison, each trained once and cached.

Every model goes through :func:`course_lib.checkpoints.train_or_load` under ``output_dir() / "05_latent_sweep"``,
keyed by a fingerprint of its recipe (model config, training config, objective), the data and the training
code: a changed recipe trains a new model instead of loading a stale one. When the sweep is loaded, everything
the explorers (:mod:`course_lib.experiments.latent_explorers`) show is computed once (latent means of the test
set, reconstructions, prior samples, test metrics, per-unit activity), so a slider move only redraws.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from course_lib import checkpoints, config, report
from course_lib.data import Dataset
from course_lib.evaluate import ACTIVE_UNIT_THRESHOLD, encode, evaluate, reconstruct, sample_prior, unit_activity
from course_lib.losses import BetaVAEObjective, MSEObjective, Objective
from course_lib.models import Model, ModelConfig, is_vae
from course_lib.train import TrainConfig, fit

LATENT_DIMS: tuple[int, ...] = (2, 3, 4, 8, 16, 32)
"""The latent dimensions of the full sweep."""
BETAS: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
"""The KL weights of the full sweep (beta = 1 is the plain VAE, beta = 0 an AE with a noisy code; at 8 and 16
most units of the larger latent spaces collapse to the prior)."""
FAST_LATENT_DIMS: tuple[int, ...] = (2, 16)
FAST_BETAS: tuple[float, ...] = (0.5, 1.0, 8.0)
INTERPOLATION_LATENT_DIM = 16
"""The latent dimension of the AE trained beside the VAEs, for the interpolation explorer."""
N_SHOWN = 10
"""How many test images (one of each digit where possible) and prior samples per row the explorers show."""
SUBFOLDER = "05_latent_sweep"


@dataclass(frozen=True)
class SweepSpec:
    """Which models the sweep trains and how: the grid, the data set, the training recipe."""

    dataset: str
    latent_dims: tuple[int, ...]
    betas: tuple[float, ...]
    ae_latent_dims: tuple[int, ...] = (INTERPOLATION_LATENT_DIM,)
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    encoder_widths: tuple[int, ...] = (128, 64)
    decoder_widths: tuple[int, ...] = (64, 128)
    seed: int = 0

    def __post_init__(self) -> None:
        self.members()  # the model configs and objectives check latent dimensions and betas
        self.train_config()  # and the training config the rest

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed)

    def members(self) -> list[tuple[str, ModelConfig, Objective]]:
        """(file name, model config, objective) of every model: the VAE grid, then the AEs."""

        def model_config(kind: str, latent_dim: int) -> ModelConfig:
            return ModelConfig(kind, latent_dim, self.encoder_widths, self.decoder_widths)

        vaes = [(f"vae_z{d}_beta{b:g}", model_config("vae", d), BetaVAEObjective(b))
                for d in self.latent_dims for b in self.betas]  # fmt: skip
        aes = [(f"ae_z{d}", model_config("ae", d), MSEObjective()) for d in self.ae_latent_dims]
        return vaes + aes

    def cache_key(self, model_config: ModelConfig, objective: Objective, data: Dataset) -> str:
        """The fingerprint of one model's training run: recipe, data (train and test) and training code."""
        recipe = {
            "dataset": self.dataset,
            "model": model_config.to_dict(),
            "train": asdict(self.train_config()),
            "objective": repr(objective),  # BetaVAEObjective(beta=...) or MSEObjective()
        }
        return checkpoints.fingerprint(recipe, data.train_images, data.test_images)

    @property
    def folder(self) -> Path:
        return config.output_dir() / SUBFOLDER

    def describe(self) -> str:
        return (
            f"sweep on {self.dataset}: VAEs with latent dim {list(self.latent_dims)} x beta {list(self.betas)}"
            f" and AEs with latent dim {list(self.ae_latent_dims)} ({len(self.members())} models), "
            f"{self.epochs} epochs each, batch {self.batch_size}, Adam lr {self.lr:g}, seed {self.seed}"
        )


def default_spec() -> SweepSpec:
    """fast: a 2 x 3 corner of the grid on mnist-5k; reference: the whole 6 x 9 grid on mnist-5k; full: on MNIST."""
    return SweepSpec(
        dataset=config.by_mode(fast="mnist-5k", reference="mnist-5k", full="mnist"),
        latent_dims=config.by_mode(fast=FAST_LATENT_DIMS, reference=LATENT_DIMS, full=LATENT_DIMS),
        betas=config.by_mode(fast=FAST_BETAS, reference=BETAS, full=BETAS),
        epochs=config.by_mode(fast=10, reference=30, full=20),
        batch_size=config.by_mode(fast=128, reference=128, full=256),
        lr=2e-3,
    )


def shown_path(path: Path) -> str:
    """``path`` relative to the output folder when inside it (printed outputs hold no machine's paths)."""
    try:
        return "<output dir>/" + path.relative_to(config.output_dir()).as_posix()
    except ValueError:
        return str(path)


def shown_indices(labels: torch.Tensor, n: int = N_SHOWN) -> torch.Tensor:
    """Test images the explorers reconstruct: the first of each digit 0, 1, 2, ..., then the next ones."""
    labels = labels.cpu()
    firsts = [int((labels == digit).nonzero()[0]) for digit in range(10) if (labels == digit).any()]
    rest = [i for i in range(len(labels)) if i not in set(firsts)]
    return torch.tensor((firsts + rest)[:n], dtype=torch.long)


@dataclass
class SweepModel:
    """One trained model (on the CPU) with what the explorers show about it, computed once.

    ``unit_variance`` and ``unit_kl`` (VAEs only, shape (latent_dim,)): each latent unit's variance over the test
    set of its encoder mean, Var_x(mu_u(x)), and its KL averaged over the test set in nats
    (:func:`course_lib.evaluate.unit_activity`).
    """

    model: Model
    objective: Objective
    metrics: dict[str, float]
    test_codes: torch.Tensor
    reconstructions: torch.Tensor
    prior_samples: torch.Tensor
    unit_variance: torch.Tensor | None = None
    unit_kl: torch.Tensor | None = None

    @classmethod
    def summarise(
        cls,
        model: Model,
        objective: Objective,
        test_images: torch.Tensor,
        shown: torch.Tensor,
        metrics: dict[str, float] | None = None,
        seed: int = 0,
    ) -> SweepModel:
        """Encode the test set, reconstruct the ``shown`` images, decode 2 rows of prior samples, measure each
        latent unit's activity (VAEs); metrics not given are measured with :func:`course_lib.evaluate.evaluate`."""
        model = model.cpu().eval()
        units = unit_activity(model, test_images) if is_vae(model) else {}
        return cls(
            model=model,
            objective=objective,
            metrics=dict(metrics or evaluate(model, test_images, seed=seed)),
            test_codes=encode(model, test_images),
            reconstructions=reconstruct(model, test_images[shown]),
            prior_samples=sample_prior(model, 2 * N_SHOWN, seed=seed),
            unit_variance=units.get("mean_variance"),
            unit_kl=units.get("kl"),
        )

    @property
    def latent_dim(self) -> int:
        return self.model.config.latent_dim

    @property
    def beta(self) -> float | None:
        """The objective's KL weight (an MSE objective has none)."""
        return getattr(self.objective, "beta", None)

    @property
    def name(self) -> str:
        weight = "" if self.beta is None else f", beta {self.beta:g}"
        return f"{self.model.config.kind.upper()} latent {self.latent_dim}{weight}"

    def collapsed_units(self) -> list[int] | None:
        """Indices of the latent units that are inactive by the covariance definition (Var_x mu_u(x) <= 0.01);
        None for an AE."""
        if self.unit_variance is None:
            return None
        return [int(u) for u in (self.unit_variance <= ACTIVE_UNIT_THRESHOLD).nonzero().flatten()]


TABLE_COLUMNS = [
    ("model", "model", "s"),
    ("mse", "MSE/pixel", ".4f"),
    ("distortion", "D nats", ".1f"),
    ("bce", "BCE(z=mu)", ".1f"),
    ("kl", "R=KL nats", ".2f"),
    ("neg_elbo", "-ELBO", ".1f"),
    ("active", "active", "s"),
    ("active_kl", "active(KL)", "s"),
]
"""The sweep table: MSE and BCE(z=mu) of the deterministic reconstruction; D (sampled z), R and -ELBO = D + R in
nats per image; active units by the covariance definition, then by the KL one."""

UNIT_COLUMNS = [
    ("beta", "beta", "g"),
    ("kl", "R=KL nats", ".2f"),
    ("active", "active (Var mu)", "s"),
    ("active_kl", "active (KL)", "s"),
    ("collapsed", "collapsed units (Var mu <= 0.01)", "s"),
]


@dataclass
class Sweep:
    """Trained models by position in the grid, with the test set they were evaluated on.

    ``latent_dims`` and ``betas`` are the whole grid the sliders offer; positions without a model
    (fast mode trains a corner only) return None from :meth:`vae`.
    """

    vaes: dict[tuple[int, float], SweepModel]
    aes: dict[int, SweepModel]
    test_images: torch.Tensor
    test_labels: torch.Tensor
    shown: torch.Tensor
    latent_dims: tuple[int, ...] = LATENT_DIMS
    betas: tuple[float, ...] = BETAS
    log: list[str] = field(default_factory=list)

    @classmethod
    def from_models(
        cls,
        models: Sequence[tuple[Model, Objective]],
        test_images: torch.Tensor,
        test_labels: torch.Tensor,
        metrics: Sequence[dict[str, float]] | None = None,
        latent_dims: tuple[int, ...] = LATENT_DIMS,
        betas: tuple[float, ...] = BETAS,
        seed: int = 0,
    ) -> Sweep:
        """Summarise (model, objective) pairs already in memory; ``metrics[i]`` belongs to ``models[i]``."""
        test_images, test_labels = test_images.cpu(), test_labels.cpu()
        shown = shown_indices(test_labels)
        metrics = metrics or [None] * len(models)
        entries = [
            SweepModel.summarise(model, objective, test_images, shown, found, seed)
            for (model, objective), found in zip(models, metrics, strict=True)
        ]
        return cls(
            vaes={(e.latent_dim, float(e.beta)): e for e in entries if is_vae(e.model)},
            aes={e.latent_dim: e for e in entries if not is_vae(e.model)},
            test_images=test_images,
            test_labels=test_labels,
            shown=shown,
            latent_dims=tuple(latent_dims),
            betas=tuple(float(b) for b in betas),
        )

    def vae(self, latent_dim: int, beta: float) -> SweepModel | None:
        """The VAE at this grid position, or None if the sweep has none there."""
        return self.vaes.get((int(latent_dim), float(beta)))

    def ae(self, latent_dim: int) -> SweepModel | None:
        return self.aes.get(int(latent_dim))

    def trained_positions(self) -> list[tuple[int, float]]:
        return sorted(self.vaes)

    def table(self) -> str:
        """The sweep's test metrics as a text table (one VAE per row, then the AEs)."""
        entries = [self.vaes[k] for k in sorted(self.vaes)] + [self.aes[k] for k in sorted(self.aes)]
        rows = [{**entry.metrics, "model": entry.name, **_active_cells(entry)} for entry in entries]
        return report.table(rows, TABLE_COLUMNS)

    def grid_table(self, key: str, fmt: str = ".1f") -> str:
        """One test metric of the VAEs over the grid: a row per beta, a column per latent dimension ("-" where
        this run has no model)."""
        dims = sorted({d for d, _ in self.vaes})
        rows = []
        for beta in sorted({b for _, b in self.vaes}):
            entries = {d: self.vae(d, beta) for d in dims}
            rows.append({"beta": beta, **{d: None if e is None else e.metrics[key] for d, e in entries.items()}})
        return report.table(rows, [("beta", "beta", "g")] + [(d, f"d={d}", fmt) for d in dims])

    def units_table(self, latent_dim: int) -> str:
        """Per beta at ``latent_dim``: the rate, the active units by both definitions, and which units collapsed."""
        rows = []
        for beta in self.betas:
            entry = self.vae(latent_dim, beta)
            if entry is not None:
                collapsed = entry.collapsed_units()
                shown = ", ".join(map(str, collapsed)) if collapsed else "none"
                rows.append({"beta": beta, "kl": entry.metrics["kl"], "collapsed": shown, **_active_cells(entry)})
        return report.table(rows, UNIT_COLUMNS)


def _active_cells(entry: SweepModel) -> dict[str, str | None]:
    """The table's "active" cells of one model: "a/d" by each definition, None for an AE."""
    return {
        column: None if entry.metrics.get(key) is None else f"{int(entry.metrics[key])}/{entry.latent_dim}"
        for column, key in (("active", "active_units_cov"), ("active_kl", "active_units"))
    }


def _trainer(
    spec: SweepSpec,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    objective: Objective,
    progress: bool | None,
    desc: str,
) -> Callable[[Model, Path, bool], tuple[dict[str, float], list[dict[str, float]]]]:
    """The ``train`` callback of :func:`course_lib.checkpoints.train_or_load` for one model of the sweep."""

    def train(model: Model, partial: Path, resume: bool) -> tuple[dict[str, float], list[dict[str, float]]]:
        history = fit(model, train_images, spec.train_config(), objective=objective, checkpoint=partial,
                      resume=resume, progress=progress, desc=desc)  # fmt: skip
        return evaluate(model, test_images, seed=spec.seed), history.records

    return train


def train_or_load(
    spec: SweepSpec,
    data: Dataset,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    verbose: bool = True,
) -> Sweep:
    """Every model of ``spec``, loaded from the cache or trained on ``data``'s train split on ``device`` (and
    cached); test metrics come from the test split. The returned :class:`Sweep` lives on the CPU.

    The test metrics are measured again on every call (:func:`course_lib.evaluate.evaluate` with the spec's seed,
    well under a second per model): the metrics stored in a checkpoint were measured by the evaluation code of
    the day it was trained, which is not part of the fingerprint."""
    if data.name != spec.dataset:
        raise ValueError(f"the sweep spec is for {spec.dataset!r} but the data set is {data.name!r}")
    train_images, test_images = data.train_images.to(device), data.test_images.to(device)
    members = spec.members()
    models, log = [], []
    trained = 0
    started = time.perf_counter()
    for i, (name, model_config, objective) in enumerate(members, 1):
        tic = time.perf_counter()
        train = _trainer(spec, train_images, test_images, objective, progress, name)
        key = spec.cache_key(model_config, objective, data)
        cached = checkpoints.train_or_load(spec.folder, name, key, model_config, train, spec.seed, device)
        models.append((cached.model, objective))
        trained += cached.message.startswith("trained")
        log.append(f"[{i:>2}/{len(members)}] {cached.message} in {time.perf_counter() - tic:.1f} s")
        if verbose:
            print(log[-1], flush=True)
    sweep = Sweep.from_models(models, data.test_images, data.test_labels, seed=spec.seed)
    sweep.log = log
    if verbose:
        print(
            f"{trained} trained, {len(log) - trained} loaded; checkpoints in {shown_path(spec.folder)}; "
            f"{time.perf_counter() - started:.1f} s wall"
        )
    return sweep
