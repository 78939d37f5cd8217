"""Lesson 06: pixel-space against latent-space diffusion, a race of sample quality against training time.

Both denoisers train on the same images with the same batch size, learning rate and no augmentation, for a fixed
number of optimizer steps, and their weights are snapshotted on the way. Every snapshot is sampled (same DDIM steps,
same number of images) and judged by its FLD to real test digits (:mod:`course_lib.experiments.judging`); it is
placed at the wall-clock seconds of training it took, the latent side's including its autoencoder's own training.
Sampling speed is timed apart, as medians of repeats at several batch sizes and step counts. Notebook 06 runs the
steps one at a time with the theory in between; ``benchmarks/latent_diffusion.py`` runs :func:`run`.
"""

from __future__ import annotations

import os
import pickle
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from course_lib.checkpoints import TRAINING_CODE, fingerprint
from course_lib.config import by_mode, output_dir, pick_device, seed_everything
from course_lib.data import IMAGE_SHAPE, load_dataset
from course_lib.diffusion import (
    DiffusionHistory,
    LatentConvNet,
    LatentMLP,
    LatentScaler,
    NoiseSchedule,
    PixelUNet,
    Snapshot,
    flops_per_image,
    sample_latent_images,
    sample_pixel_images,
    to_model_range,
    train_diffusion,
)
from course_lib.evaluate import encode, reconstruct, sample_prior
from course_lib.experiments.judging import Judge, Memorisation, load_judge, memorisation
from course_lib.losses import BetaVAEObjective, MSEObjective
from course_lib.measure import Timing, count_flops, timed
from course_lib.models import Model, ModelConfig, build_model, is_vae, preset_config
from course_lib.report import table
from course_lib.train import IMPROVED_BETA, RECIPES, fit

BATCH_SIZE = 128  # training batch of both denoisers and of the autoencoder
LR = 1e-3  # Adam's learning rate of both denoisers
RACE_CODE = (*TRAINING_CODE, "course_lib.diffusion.training", "course_lib.diffusion.denoisers",
             "course_lib.diffusion.schedule", "course_lib.diffusion.spaces")
"""The modules whose source a cached side of the race depends on."""


@dataclass(frozen=True)
class RaceSettings:
    """What one run of the race does. The last snapshot of each side is where its training stops."""

    pixel_snapshots: tuple[int, ...]
    latent_snapshots: tuple[int, ...]
    ae_epochs: int
    n_samples: int
    ddim_steps: int
    speed_batches: tuple[int, ...]
    speed_steps: tuple[int, ...]
    speed_repeats: int = 5
    timesteps: int = 1000

    def __post_init__(self) -> None:
        for name in ("pixel_snapshots", "latent_snapshots"):
            steps = getattr(self, name)
            if not steps or list(steps) != sorted(set(steps)) or steps[0] < 1:
                raise ValueError(f"{name} must be increasing step counts >= 1, got {steps}")

    def describe(self) -> str:
        return (f"pixel U-Net snapshots at {', '.join(map(str, self.pixel_snapshots))} steps; latent MLP at "
                f"{', '.join(map(str, self.latent_snapshots))} steps after a {self.ae_epochs}-epoch autoencoder; "
                f"{self.n_samples} images x {self.ddim_steps} DDIM steps per snapshot; batch {BATCH_SIZE}, lr {LR}, "
                f"T = {self.timesteps}")


SETTINGS = by_mode(
    fast=RaceSettings((10, 20, 40, 80), (20, 40, 80, 160, 320), ae_epochs=5, n_samples=100, ddim_steps=10,
                      speed_batches=(1, 32), speed_steps=(5, 10)),
    reference=RaceSettings((250, 500, 1000, 2000, 4000), (250, 500, 1000, 2000, 4000, 8000, 16000, 32000),
                           ae_epochs=100, n_samples=500, ddim_steps=50, speed_batches=(1, 32, 500),
                           speed_steps=(10, 50)),
    full=RaceSettings((250, 500, 1000, 2000, 4000, 8000, 16000, 32000),
                      (250, 500, 1000, 2000, 4000, 8000, 16000, 32000), ae_epochs=100, n_samples=500, ddim_steps=50,
                      speed_batches=(1, 32, 500), speed_steps=(10, 50)),
)
"""The race of each mode: reference mode trains the pixel U-Net about 10 minutes on 2 CPU cores."""


# ---- The two sides' training, cached ----
@dataclass
class Side:
    """One side's training: its denoiser (final weights), log and snapshots; on the latent side also the
    autoencoder, its training seconds and the scaler of its latents."""

    name: str
    denoiser: PixelUNet | LatentMLP | LatentConvNet
    history: DiffusionHistory
    autoencoder: Model | None = None
    autoencoder_seconds: float = 0.0
    scaler: LatentScaler | None = None
    message: str = ""

    def seconds(self, snapshot: Snapshot) -> float:
        """Training seconds to reach ``snapshot``, the autoencoder's included."""
        return self.autoencoder_seconds + snapshot.seconds

    def sample(self, schedule: NoiseSchedule, n: int, steps: int, seed: int = 0) -> torch.Tensor:
        """``n`` images in [0, 1] from the denoiser's current weights, ``steps`` DDIM steps."""
        if self.autoencoder is None:
            return sample_pixel_images(self.denoiser, schedule, n, steps, seed=seed)
        return sample_latent_images(self.denoiser, schedule, self.autoencoder, self.scaler, n, steps, seed=seed)


def pixel_denoiser(device: torch.device | str, seed: int = 0) -> PixelUNet:
    """The pixel racer, initialised from ``seed``: a U-Net with 16, 32, 64 channels."""
    torch.manual_seed(seed)
    return PixelUNet(channels=(16, 32, 64)).to(device)


def latent_denoiser(autoencoder: ModelConfig, device: torch.device | str, seed: int = 0) -> LatentMLP | LatentConvNet:
    """The latent racer for ``autoencoder``'s codes, initialised from ``seed``: an MLP of three blocks 128 wide
    on a latent vector; on a spatial latent, a conv net of two residual blocks 32 channels wide."""
    torch.manual_seed(seed)
    if autoencoder.spatial_latent:
        return LatentConvNet(autoencoder.latent_shape, width=32, depth=2).to(device)
    return LatentMLP(autoencoder.latent_dim, width=128, depth=3).to(device)


def autoencoder_config(autoencoder: str | ModelConfig) -> ModelConfig:
    """``"ae"`` or ``"vae"``: the article's improved preset of that kind; a :class:`ModelConfig` as it is."""
    return autoencoder if isinstance(autoencoder, ModelConfig) else preset_config(f"seed-improved-{autoencoder}")


def train_autoencoder(config: ModelConfig, images: torch.Tensor, epochs: int, seed: int = 0) -> tuple[Model, float]:
    """The AE or VAE of ``config`` (a VAE with beta = IMPROVED_BETA), trained with ``fit`` at the denoisers' batch
    size and without the improved recipe's rotations and learning-rate scheduler, so that neither side of the
    race gets a trick the other lacks; returns it and its training seconds."""
    torch.manual_seed(seed)
    model = build_model(config).to(images.device)
    recipe = RECIPES["seed-improved"].replace(epochs=epochs, batch_size=BATCH_SIZE, seed=seed, rotation_degrees=0.0,
                                              plateau_scheduler=False)
    objective = BetaVAEObjective(IMPROVED_BETA) if is_vae(model) else MSEObjective()
    _, seconds = timed(fit, model, images, recipe, objective=objective, progress=False, device=images.device)
    return model, seconds


def _history_from_plain(plain: dict) -> DiffusionHistory:
    """A :class:`DiffusionHistory` back from ``dataclasses.asdict`` (as a cached side stores it)."""
    return DiffusionHistory(**(plain | {"snapshots": [Snapshot(**s) for s in plain["snapshots"]]}))


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _load(path: Path, device: torch.device | str) -> dict | None:
    """A cached side (tensors and plain values only: ``weights_only=True``), or None if missing or unreadable."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (FileNotFoundError, pickle.UnpicklingError, RuntimeError, EOFError):
        return None


def train_pixel_side(train_images: torch.Tensor, settings: RaceSettings, folder: Path, seed: int = 0) -> Side:
    """The pixel U-Net trained on the images in [-1, 1] up to its last snapshot; loaded from ``folder`` when this
    training (settings, seed, data, code) ran before."""
    device = train_images.device
    unet = pixel_denoiser(device, seed)
    spec = {"side": "pixel", "snapshots": settings.pixel_snapshots, "T": settings.timesteps, "seed": seed,
            "batch": BATCH_SIZE, "lr": LR, "device": device.type}
    path = folder / f"pixel_{fingerprint(spec, train_images, code_modules=RACE_CODE)}.pt"
    cached = _load(path, device)
    if cached is not None:
        history = _history_from_plain(cached["history"])
        unet.load_state_dict(history.snapshots[-1].state)
        return Side("pixel", unet.eval(), history, message=f"loaded {path.name}")
    schedule = NoiseSchedule(settings.timesteps, device=device)
    history = train_diffusion(unet, schedule, to_model_range(train_images), settings.pixel_snapshots[-1],
                              batch_size=BATCH_SIZE, lr=LR, seed=seed, log_every=25,
                              snapshot_steps=settings.pixel_snapshots)
    _save(path, {"history": asdict(history)})
    return Side("pixel", unet, history, message=f"trained, saved {path.name}")


def train_latent_side(
    train_images: torch.Tensor, settings: RaceSettings, folder: Path, autoencoder: str | ModelConfig = "vae",
    seed: int = 0,
) -> Side:
    """The autoencoder (``"ae"``, ``"vae"`` or a config, see :func:`autoencoder_config`), then its latent denoiser
    on its scaled latents up to the last latent snapshot; loaded from ``folder`` when this training ran before.
    The side is called "latent", or "spatial latent" for a spatial code."""
    device = train_images.device
    config = autoencoder_config(autoencoder)
    denoiser = latent_denoiser(config, device, seed)
    name = "spatial latent" if config.spatial_latent else "latent"
    spec = {"side": name, "autoencoder": config.to_dict(), "ae_epochs": settings.ae_epochs,
            "snapshots": settings.latent_snapshots, "T": settings.timesteps, "seed": seed, "batch": BATCH_SIZE,
            "lr": LR, "device": device.type}
    key = fingerprint(spec, train_images, code_modules=RACE_CODE)
    path = folder / f"{name.replace(' ', '-')}-{config.kind}_{key}.pt"
    cached = _load(path, device)
    if cached is not None:
        model = build_model(ModelConfig.from_dict(cached["ae_config"])).to(device)
        model.load_state_dict(cached["ae_state"])
        history = _history_from_plain(cached["history"])
        denoiser.load_state_dict(history.snapshots[-1].state)
        return Side(name, denoiser.eval(), history, model.eval(), cached["ae_seconds"],
                    LatentScaler(*cached["scaler"]), f"loaded {path.name}")
    model, ae_seconds = train_autoencoder(config, train_images, settings.ae_epochs, seed)
    scaler = LatentScaler().fit(encode(model, train_images), center=not is_vae(model))
    scaled = scaler.encode(encode(model, train_images))
    schedule = NoiseSchedule(settings.timesteps, device=device)
    history = train_diffusion(denoiser, schedule, scaled, settings.latent_snapshots[-1], batch_size=BATCH_SIZE, lr=LR,
                              seed=seed, log_every=100, snapshot_steps=settings.latent_snapshots)
    _save(path, {"ae_config": config.to_dict(), "ae_state": model.state_dict(), "ae_seconds": ae_seconds,
                 "scaler": [scaler.scale, scaler.shift], "history": asdict(history)})
    return Side(name, denoiser, history, model.eval(), ae_seconds, scaler, f"trained, saved {path.name}")


# ---- Quality against time ----
@dataclass(frozen=True)
class CurvePoint:
    """One snapshot, judged: optimizer steps, training seconds (autoencoder included) and FLD."""

    step: int
    seconds: float
    fld: float


def quality_curve(
    side: Side, schedule: NoiseSchedule, judge: Judge, n: int, steps: int, seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[CurvePoint], list[torch.Tensor]]:
    """Sample ``n`` images from every snapshot of ``side`` (the same starting noise each time) and judge them;
    return the points and each snapshot's images. The denoiser ends with its final weights."""
    points, images = [], []
    for snapshot in side.history.snapshots:
        side.denoiser.load_state_dict(snapshot.state)
        images.append(side.sample(schedule, n, steps, seed))
        points.append(CurvePoint(snapshot.step, side.seconds(snapshot), judge.fld(images[-1])))
        if progress:
            progress(f"{side.name}: step {snapshot.step}, {points[-1].seconds:.0f} s, FLD {points[-1].fld:.3g}")
    return points, images


def fld_spread(
    side: Side, schedule: NoiseSchedule, judge: Judge, n: int, steps: int, seeds: Sequence[int]
) -> tuple[float, ...]:
    """The FLDs of the final weights' samples drawn with each of ``seeds``: how much of an FLD difference is the
    luck of one sample set."""
    return tuple(judge.fld(side.sample(schedule, n, steps, seed)) for seed in seeds)


def reference_flds(judge: Judge, autoencoder: Model, n: int, seed: int = 0) -> dict[str, float]:
    """FLDs that generated images are read against (lower is better):

    - ``"floor"``: real test digits the judge never trained on, as many as the reference half;
    - ``"reconstructions"``: the autoencoder's reconstructions (z = mean) of those digits, the decoder's quality,
      which caps latent diffusion;
    - ``"prior"`` (VAE only): ``n`` images decoded from N(0, I) samples, the VAE's own generator.
    """
    out = {"floor": judge.floor(), "reconstructions": judge.fld(reconstruct(autoencoder, judge.heldout))}
    if is_vae(autoencoder):
        out["prior"] = judge.fld(sample_prior(autoencoder, n, seed=seed))
    return out


REFERENCE_LABELS = {
    "floor": "real test digits (never seen by the judge): the floor",
    "reconstructions": "the autoencoder's reconstructions of them: latent diffusion's cap",
    "prior": "the VAE decoded from N(0, I) samples, no diffusion",
}


def curve_table(pixel: Sequence[CurvePoint], latent: Sequence[CurvePoint]) -> str:
    """Every judged snapshot of both sides, in order of training seconds."""
    rows = [{"side": name, "step": p.step, "seconds": p.seconds, "fld": p.fld}
            for name, points in (("pixel", pixel), ("latent", latent)) for p in points]
    rows.sort(key=lambda r: r["seconds"])
    return table(rows, [("side", "side", str), ("step", "optimizer steps", "d"),
                        ("seconds", "training s (AE incl.)", ".3g"), ("fld", "FLD", ".3g")])


def reference_table(references: dict[str, float], spreads: dict[str, tuple[float, ...]]) -> str:
    """The FLD references and the FLD spread of each side's final weights over three sampling seeds."""
    rows = [{"what": REFERENCE_LABELS.get(key, key), "fld": f"{value:.3g}"} for key, value in references.items()]
    rows += [{"what": f"{name}, final weights, {len(flds)} sampling seeds", "fld": f"{statistics.median(flds):.3g} "
              f"({min(flds):.3g}-{max(flds):.3g})"} for name, flds in spreads.items()]
    return table(rows, [("what", "FLD to the reference half of the test set", str), ("fld", "FLD (range)", str)])


def seconds_to_reach(points: Sequence[CurvePoint], target: float) -> float | None:
    """The training seconds of the first point whose FLD is at or below ``target``; None if none is."""
    return next((p.seconds for p in points if p.fld <= target), None)


def equal_steps_table(pixel: Sequence[CurvePoint], latent: Sequence[CurvePoint]) -> str:
    """Both sides at the optimizer steps they share: seconds and FLD."""
    by_step = {p.step: p for p in latent}
    rows = [{"step": p.step, "pixel_s": p.seconds, "pixel_fld": p.fld, "latent_s": by_step[p.step].seconds,
             "latent_fld": by_step[p.step].fld} for p in pixel if p.step in by_step]
    return table(rows, [("step", "optimizer steps", "d"), ("pixel_s", "pixel: s", ".3g"),
                        ("pixel_fld", "pixel: FLD", ".3g"), ("latent_s", "latent: s (AE incl.)", ".3g"),
                        ("latent_fld", "latent: FLD", ".3g")])


# ---- Sampling speed ----
@dataclass(frozen=True)
class SpeedRow:
    """Sampling ``batch`` images with ``steps`` DDIM steps on each side: timings and FLOPs per image."""

    batch: int
    steps: int
    pixel: Timing
    latent: Timing
    pixel_flops: int
    latent_flops: int

    @property
    def speedup(self) -> float:
        return self.pixel.median / self.latent.median

    @property
    def separated(self) -> bool:
        """Whether every pixel run was slower than every latent run (the ranges do not overlap)."""
        return min(self.pixel.seconds) > max(self.latent.seconds)


def flops_per_sample(side: Side, steps: int) -> int:
    """FLOPs to make one image: ``steps`` denoiser evaluations plus, on the latent side, one decoding."""
    if side.autoencoder is None:
        return steps * flops_per_image(side.denoiser, IMAGE_SHAPE)
    z = torch.zeros(1, side.denoiser.latent_dim, device=next(side.autoencoder.parameters()).device)
    return steps * flops_per_image(side.denoiser, (side.denoiser.latent_dim,)) + count_flops(side.autoencoder.decode,
                                                                                              z)


def sampling_speed(
    pixel: Side, latent: Side, schedule: NoiseSchedule, batches: Sequence[int], steps: Sequence[int], repeats: int = 5
) -> list[SpeedRow]:
    """Time both sides' sampling at every batch size and step count, ``repeats`` times each, taking turns."""
    device = next(pixel.denoiser.parameters()).device
    rows = []
    for batch in batches:
        for n_steps in steps:
            runs: dict[str, list[float]] = {"pixel": [], "latent": []}
            for repeat in range(repeats):
                for side in (pixel, latent):
                    _, seconds = timed(side.sample, schedule, batch, n_steps, seed=repeat, device=device)
                    runs[side.name].append(seconds)
            rows.append(SpeedRow(batch, n_steps, Timing(tuple(runs["pixel"])), Timing(tuple(runs["latent"])),
                                 flops_per_sample(pixel, n_steps), flops_per_sample(latent, n_steps)))
    return rows


def speed_table(rows: Sequence[SpeedRow]) -> str:
    """Median sampling seconds (and range) of each side, their ratio, and FLOPs per image."""
    def seconds(t: Timing) -> str:
        return f"{t.median:.3g} ({min(t.seconds):.3g}-{max(t.seconds):.3g})"

    shown = [{"batch": r.batch, "steps": r.steps, "pixel": seconds(r.pixel), "latent": seconds(r.latent),
              "speedup": f"{r.speedup:,.1f}x{'' if r.separated else ' (ranges overlap)'}",
              "flops": f"{r.pixel_flops / r.latent_flops:,.0f}x"} for r in rows]
    return table(shown, [("batch", "images", "d"), ("steps", "DDIM steps", "d"), ("pixel", "pixel s (range)", str),
                         ("latent", "latent s (range)", str), ("speedup", "pixel/latent time", str),
                         ("flops", "pixel/latent FLOPs per image", str)])


# ---- The verdicts, computed from the measurements ----
@dataclass(frozen=True)
class RaceVerdict:
    """Does the latent side reach the pixel side's best quality sooner, and does it sample faster?"""

    target_fld: float
    pixel_seconds: float
    latent_seconds: float | None
    sooner: bool
    faster: bool
    text: str


def race_verdict(pixel: Sequence[CurvePoint], latent: Sequence[CurvePoint], speed: Sequence[SpeedRow],
                 noise: float = 0.0) -> RaceVerdict:
    """The pixel side's best FLD is the target. "Sooner" holds when the latent side reaches it (within ``noise``,
    the FLD spread of one sample set) in fewer training seconds than the pixel side took; "faster" when every
    speed row's pixel runs were all slower than its latent runs."""
    best = min(pixel, key=lambda p: p.fld)
    reached = seconds_to_reach(latent, best.fld + noise)
    sooner = reached is not None and reached < best.seconds
    faster = all(r.separated for r in speed)
    when = (f"in {reached:.3g} s" if reached is not None else "not at all") + f" (pixel: {best.seconds:.3g} s)"
    speedups = ", ".join(f"{r.speedup:,.1f}x" for r in speed)
    text = "\n".join([
        f"[{'holds' if sooner else 'does not hold'}] the latent side reaches the pixel side's best FLD "
        f"({best.fld:.3g}, +{noise:.2g} sampling noise) {when}",
        f"[{'holds' if faster else 'does not hold'}] latent sampling is faster at every batch size and step count "
        f"(median speed-ups {speedups})",
    ])
    return RaceVerdict(best.fld, best.seconds, reached, sooner, faster, text)


# ---- The whole race in one call (the benchmark's) ----
@dataclass
class Race:
    """Everything :func:`run` measured."""

    judge_accuracy: float
    pixel: list[CurvePoint]
    latent: list[CurvePoint]
    references: dict[str, float]
    speed: list[SpeedRow]
    spreads: dict[str, tuple[float, ...]]
    memorisation: dict[str, Memorisation]
    verdict: RaceVerdict


def run(
    dataset: str = "mnist-5k", settings: RaceSettings = SETTINGS, autoencoder: str = "vae", seed: int = 0,
    device: str | None = None, folder: str | Path | None = None, log: Callable[[str], None] = print,
) -> Race:
    """The race of notebook 06 from data to verdicts, ``log``-ging as it goes; trained sides are cached."""
    seed_everything(seed)
    device = pick_device(device)
    folder = Path(folder) if folder is not None else output_dir() / "06_race"
    data = load_dataset(dataset).to(device)
    log(f"device: {device}, torch threads: {torch.get_num_threads()}\n{data.describe()}\n{settings.describe()}")
    judge = load_judge(data, folder.parent / "judges")
    log(f"judge: test accuracy {judge.test_accuracy:.3f} ({judge.message})")
    schedule = NoiseSchedule(settings.timesteps, device=device)
    pixel = train_pixel_side(data.train_images, settings, folder, seed)
    log(f"{pixel.history.summary('pixel U-Net')} ({pixel.message})")
    latent = train_latent_side(data.train_images, settings, folder, autoencoder, seed)
    log(f"{autoencoder.upper()}: {latent.autoencoder_seconds:.1f} s; {latent.history.summary('latent MLP')} "
        f"({latent.message})")
    curves, images = {}, {}
    for side in (pixel, latent):
        curves[side.name], images[side.name] = quality_curve(side, schedule, judge, settings.n_samples,
                                                             settings.ddim_steps, seed, log)
    spreads = {side.name: fld_spread(side, schedule, judge, settings.n_samples, settings.ddim_steps, (1, 2, 3))
               for side in (pixel, latent)}
    references = reference_flds(judge, latent.autoencoder, settings.n_samples, seed)
    speed = sampling_speed(pixel, latent, schedule, settings.speed_batches, settings.speed_steps,
                           settings.speed_repeats)
    copies = {name: memorisation(images[name][-1], data.train_images, judge.heldout) for name in images}
    noise = max(max(flds) - min(flds) for flds in spreads.values())
    verdict = race_verdict(curves["pixel"], curves["latent"], speed, noise)
    return Race(judge.test_accuracy, curves["pixel"], curves["latent"], references, speed, spreads, copies, verdict)
