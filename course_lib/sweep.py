"""A sweep of VAEs over latent dimension and beta (plus AEs for comparison), trained once and cached.

Each model is trained with :func:`course_lib.train.fit`, evaluated on the test set with
:func:`course_lib.evaluate.evaluate` and saved with :func:`course_lib.checkpoints.save_checkpoint` under
``course_lib.config.output_dir() / "05_latent_sweep"``. A second run loads the checkpoints instead of training.
At load, everything the explorers in :mod:`course_lib.widgets` need is precomputed (latent means of the test
set, reconstructions, samples from the prior, metrics), so moving a slider only redraws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from course_lib import config
from course_lib.checkpoints import load_checkpoint, save_checkpoint
from course_lib.data import Dataset
from course_lib.evaluate import encode_mean, evaluate, reconstruct
from course_lib.models import Model, ModelConfig, build_model, is_vae
from course_lib.train import TrainConfig, fit

LATENT_DIMS: tuple[int, ...] = (2, 3, 4, 8, 16, 32)
"""The latent dimensions of the full sweep."""
BETAS: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
"""The KL weights of the full sweep (beta = 1 is the plain VAE, beta = 0 an AE with a noisy code)."""
FAST_LATENT_DIMS: tuple[int, ...] = (2, 16)
FAST_BETAS: tuple[float, ...] = (0.5, 1.0)
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
        if any(b < 0 for b in self.betas):
            raise ValueError(f"betas must be >= 0, got {self.betas}")
        if any(d < 1 for d in (*self.latent_dims, *self.ae_latent_dims)):
            raise ValueError("latent dimensions must be >= 1")

    def model_config(self, kind: str, latent_dim: int) -> ModelConfig:
        return ModelConfig(kind, latent_dim, self.encoder_widths, self.decoder_widths)

    def train_config(self, beta: float = 1.0) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, beta=beta, seed=self.seed)

    @property
    def folder(self) -> Path:
        """Where the checkpoints go; the name encodes data, recipe and widths, so runs never mix."""
        widths = "-".join(map(str, self.encoder_widths))
        name = f"{self.dataset}_e{self.epochs}_b{self.batch_size}_lr{self.lr:g}_w{widths}_s{self.seed}"
        return config.output_dir() / SUBFOLDER / name

    def path(self, kind: str, latent_dim: int, beta: float | None = None) -> Path:
        suffix = f"_beta{beta:g}" if kind == "vae" else ""
        return self.folder / f"{kind}_z{latent_dim}{suffix}.pt"

    @property
    def n_models(self) -> int:
        return len(self.latent_dims) * len(self.betas) + len(self.ae_latent_dims)

    def describe(self) -> str:
        return (
            f"sweep on {self.dataset}: VAEs with latent dim {list(self.latent_dims)} x beta {list(self.betas)}"
            f" and AEs with latent dim {list(self.ae_latent_dims)} ({self.n_models} models), "
            f"{self.epochs} epochs each, batch {self.batch_size}, Adam lr {self.lr:g}, seed {self.seed}"
        )


def _shown_path(path: Path) -> str:
    """``path`` relative to the output folder when inside it (printed outputs hold no machine's paths)."""
    try:
        return "<output dir>/" + path.relative_to(config.output_dir()).as_posix()
    except ValueError:
        return str(path)


def default_spec() -> SweepSpec:
    """FAST: a 2 x 2 corner of the grid on mnist-5k; full: the whole 6 x 7 grid on MNIST."""
    return SweepSpec(
        dataset=config.fast_or_full("mnist-5k", "mnist"),
        latent_dims=config.fast_or_full(FAST_LATENT_DIMS, LATENT_DIMS),
        betas=config.fast_or_full(FAST_BETAS, BETAS),
        epochs=config.fast_or_full(10, 20),
        batch_size=config.fast_or_full(128, 256),
        lr=2e-3,
    )


@dataclass
class SweepModel:
    """One trained model with what the explorers show about it, computed once at load (all on the CPU)."""

    kind: str
    latent_dim: int
    beta: float | None
    model: Model
    metrics: dict[str, float]
    test_codes: torch.Tensor
    reconstructions: torch.Tensor
    prior_samples: torch.Tensor | None

    @property
    def name(self) -> str:
        if self.kind == "vae":
            return f"VAE latent {self.latent_dim}, beta {self.beta:g}"
        return f"AE latent {self.latent_dim}"

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latent codes (N, latent_dim) to images (N, 1, 28, 28)."""
        self.model.eval()
        return self.model.decode(z.to(torch.float32))


def shown_indices(labels: torch.Tensor, n: int = N_SHOWN) -> torch.Tensor:
    """Test images the explorers reconstruct: the first of each digit 0, 1, 2, ..., then the next ones."""
    labels = labels.cpu()
    firsts = [int((labels == digit).nonzero()[0]) for digit in range(10) if (labels == digit).any()]
    rest = [i for i in range(len(labels)) if i not in set(firsts)]
    return torch.tensor((firsts + rest)[:n], dtype=torch.long)


def _precompute(
    model: nn.Module,
    metrics: dict[str, float],
    test_images: torch.Tensor,
    shown: torch.Tensor,
    beta: float | None,
    seed: int,
) -> SweepModel:
    model = model.cpu().eval()
    vae = is_vae(model)
    latent_dim = model.config.latent_dim
    prior = None
    if vae:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            prior = model.decode(torch.randn(2 * N_SHOWN, latent_dim, generator=generator))
    return SweepModel(
        kind="vae" if vae else "ae",
        latent_dim=latent_dim,
        beta=beta if vae else None,
        model=model,
        metrics=dict(metrics),
        test_codes=encode_mean(model, test_images),
        reconstructions=reconstruct(model, test_images[shown]),
        prior_samples=prior,
    )


@dataclass
class Sweep:
    """Trained models by position in the grid, with the test set they were evaluated on.

    ``latent_dims`` and ``betas`` are the whole grid the sliders offer; positions without a model
    (FAST mode trains a corner only) return None from :meth:`vae`.
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
        vaes: dict[tuple[int, float], nn.Module],
        aes: dict[int, nn.Module],
        test_images: torch.Tensor,
        test_labels: torch.Tensor,
        metrics: dict[tuple, dict[str, float]] | None = None,
        latent_dims: tuple[int, ...] = LATENT_DIMS,
        betas: tuple[float, ...] = BETAS,
        seed: int = 0,
    ) -> Sweep:
        """Wrap models already in memory; metrics not given are computed with :func:`evaluate`."""
        metrics = metrics or {}
        test_images, test_labels = test_images.cpu(), test_labels.cpu()
        shown = shown_indices(test_labels)

        def wrap(key: tuple, model: nn.Module, beta: float | None) -> SweepModel:
            found = metrics.get(key) or evaluate(model.cpu(), test_images, seed=seed)
            return _precompute(model, found, test_images, shown, beta, seed)

        return cls(
            vaes={(d, float(b)): wrap(("vae", d, float(b)), m, float(b)) for (d, b), m in vaes.items()},
            aes={d: wrap(("ae", d), m, None) for d, m in aes.items()},
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
        lines = [
            f"{'model':<26}{'MSE/pixel':>10}{'BCE nats':>10}{'KL nats':>9}{'-ELBO':>9}{'active':>8}",
        ]
        for key in sorted(self.vaes):
            entry = self.vaes[key]
            m = entry.metrics
            lines.append(
                f"{entry.name:<26}{m['mse']:>10.4f}{m['bce']:>10.1f}{m['kl']:>9.2f}{m['neg_elbo']:>9.1f}"
                f"{int(m['active_units']):>5}/{entry.latent_dim:<2}"
            )
        for key in sorted(self.aes):
            entry = self.aes[key]
            m = entry.metrics
            lines.append(f"{entry.name:<26}{m['mse']:>10.4f}{m['bce']:>10.1f}{'-':>9}{'-':>9}{'-':>8}")
        return "\n".join(lines)


def train_or_load(
    spec: SweepSpec,
    data: Dataset,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    verbose: bool = True,
) -> Sweep:
    """Load every model of ``spec`` from its checkpoint, training (and saving) the ones that are missing.

    Training uses ``data``'s train split on ``device``; metrics are measured on its test split. The returned
    :class:`Sweep` lives on the CPU with everything the explorers show precomputed.
    """
    if data.name != spec.dataset:
        raise ValueError(f"the sweep spec is for {spec.dataset!r} but the data set is {data.name!r}")
    device = torch.device(device)
    train_images = data.train_images.to(device)
    test_images = data.test_images.to(device)
    jobs: list[tuple[str, int, float | None]] = [("vae", d, float(b)) for d in spec.latent_dims for b in spec.betas]
    jobs += [("ae", d, None) for d in spec.ae_latent_dims]
    vaes: dict[tuple[int, float], nn.Module] = {}
    aes: dict[int, nn.Module] = {}
    metrics: dict[tuple, dict[str, float]] = {}
    log: list[str] = []
    started = time.perf_counter()
    for i, (kind, latent_dim, beta) in enumerate(jobs, 1):
        model_config = spec.model_config(kind, latent_dim)
        path = spec.path(kind, latent_dim, beta)
        tic = time.perf_counter()
        if path.exists():
            model, payload = load_checkpoint(path, expected=model_config)
            found = payload["metrics"]
            action = "loaded"
        else:
            torch.manual_seed(spec.seed)
            model = build_model(model_config).to(device)
            label = f"{kind} z={latent_dim}" + (f" beta={beta:g}" if beta is not None else "")
            recipe = spec.train_config(beta if beta is not None else 1.0)
            fit(model, train_images, recipe, progress=progress, desc=label)
            found = evaluate(model, test_images, seed=spec.seed)
            save_checkpoint(path, model, metrics=found)
            action = "trained"
        key = (kind, latent_dim, beta) if kind == "vae" else (kind, latent_dim)
        metrics[key] = found
        if kind == "vae":
            vaes[(latent_dim, beta)] = model
        else:
            aes[latent_dim] = model
        line = f"[{i:>2}/{len(jobs)}] {action} {path.name} in {time.perf_counter() - tic:.1f} s"
        log.append(line)
        if verbose:
            print(line, flush=True)
    sweep = Sweep.from_models(
        vaes,
        aes,
        data.test_images,
        data.test_labels,
        metrics=metrics,
        latent_dims=LATENT_DIMS,
        betas=BETAS,
        seed=spec.seed,
    )
    sweep.log = log
    if verbose:
        trained = sum("trained" in line for line in log)
        print(
            f"{trained} trained, {len(log) - trained} loaded; checkpoints in {_shown_path(spec.folder)}; "
            f"{time.perf_counter() - started:.1f} s wall"
        )
    return sweep
