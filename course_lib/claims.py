"""Experiments that test the seed article's AE-vs-VAE comparison table, claim by claim (notebook 07).

Each helper measures one thing on held-out data and returns plain numbers or tensors; the ``verdict_*``
functions turn measurements into a :class:`Verdict` ("holds", "does not hold" or "depends") with a rule and
thresholds stated here, so a notebook never types a verdict in by hand.

Units: images are in [0, 1]; MSE is per pixel; PSNR in dB; negative ELBO in nats per image; classifier
confidence is the largest softmax probability (0.1 = a guess among 10 digits, 1 = certain).
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import config, losses
from course_lib.evaluate import reconstruct
from course_lib.models import is_vae
from course_lib.sample_quality import DigitClassifier, predict_proba
from course_lib.train import TrainConfig, fit

# ----------------------------------------------------------------------------------------------------------
# Latent codes, decoding, sampling
# ----------------------------------------------------------------------------------------------------------


@torch.no_grad()
def decode(model: nn.Module, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Decode latent points (N, latent_dim) to images (N, 1, 28, 28) in eval mode."""
    model.eval()
    return torch.cat([model.decode(b) for b in z.split(batch_size)])


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, frames: int) -> torch.Tensor:
    """Straight lines between pairs of codes: (P, D) and (P, D) -> (P, frames, D), endpoints included."""
    if frames < 2:
        raise ValueError(f"an interpolation path needs at least 2 frames, got {frames}")
    if z_start.shape != z_end.shape:
        raise ValueError(f"start and end codes differ in shape: {tuple(z_start.shape)} vs {tuple(z_end.shape)}")
    t = torch.linspace(0.0, 1.0, frames, device=z_start.device, dtype=z_start.dtype).view(1, frames, 1)
    return z_start.unsqueeze(1) * (1 - t) + z_end.unsqueeze(1) * t


def decode_paths(model: nn.Module, z_start: torch.Tensor, z_end: torch.Tensor, frames: int) -> torch.Tensor:
    """Decoded interpolation paths: (P, frames, 1, 28, 28)."""
    paths = interpolate(z_start, z_end, frames)
    p, f, d = paths.shape
    return decode(model, paths.reshape(p * f, d)).reshape(p, f, 1, 28, 28)


def path_smoothness(paths: torch.Tensor) -> dict[str, torch.Tensor]:
    """How evenly images change along each path (P, F, ...), one value per path.

    With steps s_k = ||x_{k+1} - x_k|| (L2 over pixels) and the endpoint distance d = ||x_F - x_1||:
    ``max_step`` = max_k s_k / d (a perfectly even straight path gives 1 / (F - 1); a jump gives up to 1 or
    more), ``mean_step`` = mean_k s_k / d, ``length`` = sum_k s_k / d (1 for a straight path, more for
    detours). Paths whose endpoints decode to the same image (d = 0) get NaN.
    """
    if paths.dim() < 3 or paths.shape[1] < 2:
        raise ValueError(f"paths must have shape (P, F >= 2, ...), got {tuple(paths.shape)}")
    flat = paths.reshape(paths.shape[0], paths.shape[1], -1).double()
    steps = (flat[:, 1:] - flat[:, :-1]).norm(dim=2)
    span = (flat[:, -1] - flat[:, 0]).norm(dim=1)
    span = torch.where(span > 0, span, torch.full_like(span, float("nan")))
    return {
        "max_step": (steps.max(1).values / span).float(),
        "mean_step": (steps.mean(1) / span).float(),
        "length": (steps.sum(1) / span).float(),
    }


def sample_standard_normal(model: nn.Module, n: int, seed: int = 0) -> torch.Tensor:
    """Decode ``n`` points drawn from N(0, I) in the model's latent space (the VAE's prior)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(n, model.config.latent_dim, generator=generator, device=device)
    return decode(model, z)


def fit_gaussian(codes: torch.Tensor, jitter: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and full covariance of codes (N, D), with ``jitter`` on the diagonal so it can be sampled."""
    if codes.dim() != 2 or len(codes) < 2:
        raise ValueError(f"codes must have shape (N >= 2, D), got {tuple(codes.shape)}")
    codes = codes.double()
    cov = torch.cov(codes.T).reshape(codes.shape[1], codes.shape[1])
    cov = cov + jitter * torch.eye(codes.shape[1], dtype=cov.dtype, device=cov.device)
    return codes.mean(0).float(), cov.float()


def sample_gaussian(mean: torch.Tensor, cov: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points from N(mean, cov) (via the Cholesky factor)."""
    generator = torch.Generator(device=mean.device).manual_seed(seed)
    eps = torch.randn(n, len(mean), generator=generator, device=mean.device, dtype=torch.float64)
    chol = torch.linalg.cholesky(cov.double())
    return (mean.double() + eps @ chol.T).float()


def sample_box(codes: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points uniform in the box spanned by the codes (per unit, from its min to its max).

    "Random points in the region where the codes live": the same recipe for an AE and a VAE, whatever
    the scale of their latent spaces.
    """
    low, high = codes.min(0).values, codes.max(0).values
    generator = torch.Generator(device=codes.device).manual_seed(seed)
    u = torch.rand(n, codes.shape[1], generator=generator, device=codes.device)
    return low + u * (high - low)


def confidence(classifier: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's largest softmax probability per image: 0.1 is a guess, 1 is a clear digit."""
    return predict_proba(classifier, images.clamp(0, 1)).max(1).values


# ----------------------------------------------------------------------------------------------------------
# Anomaly detection
# ----------------------------------------------------------------------------------------------------------


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative.

    ``labels`` are 1 (positive, e.g. anomaly) or 0; ties count one half (the Mann-Whitney U statistic,
    with average ranks). 1 = perfect, 0.5 = chance, 0 = perfectly inverted.
    """
    scores = scores.detach().flatten().double().cpu()
    labels = labels.detach().flatten().cpu().bool()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.numel()} vs {labels.numel()}")
    if not torch.isfinite(scores).all():
        raise ValueError("scores must be finite")
    n_pos = int(labels.sum())
    n_neg = labels.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs at least one positive and one negative example")
    _, inverse, counts = torch.unique(scores, sorted=True, return_inverse=True, return_counts=True)
    last_rank = counts.cumsum(0).double()  # 1-based rank of the last member of each group of tied scores
    average_rank = last_rank - (counts.double() - 1) / 2
    rank_sum = average_rank[inverse][labels].sum().item()
    u = rank_sum - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def roc_curve(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """False and true positive rates for every threshold (from "flag nothing" to "flag everything")."""
    scores = scores.detach().flatten().double().cpu()
    labels = labels.detach().flatten().cpu().double()
    order = torch.argsort(scores, descending=True)
    scores, labels = scores[order], labels[order]
    tps, fps = labels.cumsum(0), (1 - labels).cumsum(0)
    last_of_tie = torch.cat([scores[1:] != scores[:-1], torch.tensor([True])])
    tps, fps = tps[last_of_tie], fps[last_of_tie]
    zero = torch.zeros(1, dtype=torch.float64)
    return torch.cat([zero, fps / fps[-1]]), torch.cat([zero, tps / tps[-1]])


@torch.no_grad()
def anomaly_scores(
    model: nn.Module, images: torch.Tensor, samples: int = 4, seed: int = 0, batch_size: int = 1000
) -> torch.Tensor:
    """One score per image, higher = more anomalous.

    AE: reconstruction MSE per pixel. VAE: the negative ELBO (beta = 1) in nats per image,
    BCE(x, decode(z)) + KL(q(z|x) || N(0, I)), averaged over ``samples`` draws of z ~ q(z|x).
    """
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    out = []
    for batch in images.split(batch_size):
        if is_vae(model):
            mu, logvar = model.encode(batch)
            bce = torch.stack(
                [
                    losses.bce_per_image(model.decode(model.reparameterize(mu, logvar, generator)), batch)
                    for _ in range(samples)
                ]
            ).mean(0)
            out.append(bce + losses.kl_per_image(mu, logvar))
        else:
            out.append(losses.mse_per_pixel(model(batch), batch))
    return torch.cat(out)


# ----------------------------------------------------------------------------------------------------------
# Corruption, noise and reconstruction quality
# ----------------------------------------------------------------------------------------------------------

CORRUPTIONS = ("noise", "invert")


def corrupt_fraction(
    images: torch.Tensor, fraction: float, kind: str = "noise", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``images`` with a random ``fraction`` replaced by outliers, and the boolean mask of which.

    ``kind="noise"``: uniform random pixels in [0, 1] (no digit at all); ``kind="invert"``: 1 - x, a white
    page with a black digit.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
    generator = torch.Generator().manual_seed(seed)
    n = len(images)
    chosen = torch.randperm(n, generator=generator)[: round(fraction * n)].to(images.device)
    mask = torch.zeros(n, dtype=torch.bool, device=images.device)
    mask[chosen] = True
    out = images.clone()
    if kind == "noise":
        noise = torch.rand((len(chosen), *images.shape[1:]), generator=generator).to(images)
        out[chosen] = noise
    else:
        out[chosen] = 1.0 - images[chosen]
    return out, mask


def add_gaussian_noise(images: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """``images`` + N(0, std^2) noise, clipped back to [0, 1]."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator).to(images)
    return (images + std * noise).clamp(0.0, 1.0)


def psnr_per_image(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image against its reference (both in [0, 1])."""
    return losses.psnr_db(losses.mse_per_pixel(images, reference))


def denoise_psnr(model: nn.Module, noisy: torch.Tensor, clean: torch.Tensor) -> float:
    """Mean PSNR (dB) of the model's reconstruction of ``noisy`` against ``clean`` (VAE at z = mu)."""
    return psnr_per_image(reconstruct(model, noisy), clean).mean().item()


def reconstruction_mse(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Per-pixel MSE of each image's deterministic reconstruction (VAE at z = mu)."""
    return losses.mse_per_pixel(reconstruct(model, images), images)


# ----------------------------------------------------------------------------------------------------------
# Training runs that the claims need
# ----------------------------------------------------------------------------------------------------------


def fit_tracked(
    model: nn.Module,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    cfg: TrainConfig,
    every: int = 5,
) -> list[dict[str, float]]:
    """Train with :func:`course_lib.train.fit`, pausing every ``every`` epochs to measure the per-pixel MSE
    on the training images and on the test images (both in eval mode, VAE at z = mu).

    The pauses use fit's checkpoint-and-resume, which continues a run exactly (same optimizer state and
    random streams), so the curve is that of one uninterrupted run. Checkpoints go to a temporary folder
    under :func:`course_lib.config.output_dir` that is removed afterwards.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if cfg.plateau_scheduler and cfg.plateau_on == "test":
        raise ValueError("fit_tracked trains without test images; use plateau_on='train' or no scheduler")
    records = [_mse_record(0, model, train_images, test_images)]
    out = config.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix="claims-") as tmp:
        path = Path(tmp) / "run.pt"
        resume: Path | None = None
        end = 0
        while end < cfg.epochs:
            end = min(end + every, cfg.epochs)
            run = cfg.replace(epochs=end, checkpoint_every=every, checkpoint_path=str(path))
            fit(model, train_images, run, resume_from=resume, progress=False)
            resume = path
            records.append(_mse_record(end, model, train_images, test_images))
    return records


def _mse_record(epoch: int, model: nn.Module, train_images: torch.Tensor, test_images: torch.Tensor) -> dict:
    return {
        "epoch": epoch,
        "train_mse": reconstruction_mse(model, train_images).mean().item(),
        "test_mse": reconstruction_mse(model, test_images).mean().item(),
    }


def seconds_per_epoch(
    models: dict[str, nn.Module], train_images: torch.Tensor, cfg: TrainConfig, repeats: int = 3
) -> dict[str, float]:
    """Wall-clock seconds of one training epoch of each model: the fastest of ``repeats`` runs.

    Each run trains a copy (the models themselves are untouched) for one epoch with ``cfg``; the models take
    turns, so a burst of load on a shared machine hits all of them, and the minimum filters such bursts out.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    one_epoch = cfg.replace(epochs=1, checkpoint_every=0, checkpoint_path=None)
    best = {name: math.inf for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            twin = copy.deepcopy(model)
            if train_images.is_cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
            fit(twin, train_images, one_epoch, progress=False)
            if train_images.is_cuda:
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def generalisation_gap(record: dict[str, float]) -> float:
    """Relative train/test gap: test MSE / train MSE - 1 (0 = no gap, 1 = test error twice the train error)."""
    return record["test_mse"] / record["train_mse"] - 1.0


def epochs_to_target(values: Sequence[float], target: float) -> int | None:
    """The first epoch (1-based) whose value is at or below ``target``, or None if never reached."""
    for epoch, value in enumerate(values, start=1):
        if value <= target:
            return epoch
    return None


# ----------------------------------------------------------------------------------------------------------
# Structure of the latent space
# ----------------------------------------------------------------------------------------------------------


def linear_probe(
    train_codes: torch.Tensor,
    train_labels: torch.Tensor,
    test_codes: torch.Tensor,
    test_labels: torch.Tensor,
    steps: int = 300,
    lr: float = 0.1,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> float:
    """Test accuracy of a multinomial logistic regression fitted on the codes (full batch, Adam).

    Codes are standardised with the training codes' mean and std, so the probe sees every latent space at
    the same scale; ``weight_decay`` is a small L2 penalty on the weights.
    """
    torch.manual_seed(seed)
    train_codes, test_codes = train_codes.detach().float(), test_codes.detach().float()
    mean, std = train_codes.mean(0), train_codes.std(0).clamp_min(1e-6)
    x_train, x_test = (train_codes - mean) / std, (test_codes - mean) / std
    classes = int(max(train_labels.max(), test_labels.max()).item()) + 1
    probe = nn.Linear(x_train.shape[1], classes).to(x_train.device)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x_train), train_labels) + weight_decay * probe.weight.pow(2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (probe(x_test).argmax(1) == test_labels).float().mean().item()


def latent_statistics(codes: torch.Tensor) -> dict[str, torch.Tensor | float]:
    """Per-unit mean and std of codes (N, D), their correlation matrix, and the mean |off-diagonal
    correlation| (0 = units uncorrelated, 1 = all units carry the same information)."""
    codes = codes.detach().double().cpu()
    std = codes.std(0)
    centred = (codes - codes.mean(0)) / std.clamp_min(1e-12)
    corr = (centred.T @ centred) / (len(codes) - 1)
    corr = torch.nan_to_num(corr).clamp(-1, 1)
    d = corr.shape[0]
    off = corr[~torch.eye(d, dtype=torch.bool)].abs()
    return {
        "mean": codes.mean(0).float(),
        "std": std.float(),
        "corr": corr.float(),
        "mean_abs_corr": off.mean().item() if d > 1 else 0.0,
    }


# ----------------------------------------------------------------------------------------------------------
# Verdicts: rules with stated thresholds
# ----------------------------------------------------------------------------------------------------------

HOLDS, DOES_NOT_HOLD, DEPENDS = "holds", "does not hold", "depends"
VERDICT_LABELS = (HOLDS, DOES_NOT_HOLD, DEPENDS)

CONFIDENCE_MARGIN = 0.05
"""Classifier confidences (max softmax) closer than this count as equal."""
SMOOTHNESS_MARGIN = 0.10
"""Max-step ratios within 10 % of each other count as equally smooth."""
FLD_MARGIN = 0.20
"""FLDs within 20 % of each other count as equal."""
AUROC_USEFUL = 0.70
"""An anomaly score with AUROC below this is not a useful detector."""
AUROC_MARGIN = 0.03
"""AUROCs closer than this count as equal."""
OUTLIER_SHIFT_MARGIN = 0.03
"""Relative test-MSE changes closer than 3 percentage points count as equal."""
DENOISE_GAIN_DB = 1.0
"""A model denoises when its output is at least this many dB closer to the clean image than its input."""
GAP_MARGIN = 0.05
"""Relative train/test gaps closer than 5 percentage points count as equal."""
COST_RATIO = 1.25
"""One model is costlier when it needs this many times the other's training time (or more)."""
PROBE_MARGIN = 0.02
"""Linear-probe accuracies closer than 2 percentage points count as equal."""
CORRELATION_MARGIN = 0.02
"""Mean |correlations| closer than this count as equal."""
VISIBLE_PSNR_DB = 1.0
"""Mean PSNRs closer than this count as "no visible difference"."""


THRESHOLDS: dict[str, tuple[float, str]] = {
    "CONFIDENCE_MARGIN": (CONFIDENCE_MARGIN, "classifier confidences closer than this count as equal"),
    "SMOOTHNESS_MARGIN": (SMOOTHNESS_MARGIN, "relative difference below which max-step ratios count as equal"),
    "FLD_MARGIN": (FLD_MARGIN, "relative difference below which FLDs count as equal"),
    "AUROC_USEFUL": (AUROC_USEFUL, "an anomaly score below this AUROC is not a useful detector"),
    "AUROC_MARGIN": (AUROC_MARGIN, "AUROCs closer than this count as equal"),
    "OUTLIER_SHIFT_MARGIN": (OUTLIER_SHIFT_MARGIN, "relative test-MSE shifts closer than this count as equal"),
    "DENOISE_GAIN_DB": (DENOISE_GAIN_DB, "dB a model's output must gain over its noisy input to count as denoising"),
    "GAP_MARGIN": (GAP_MARGIN, "relative train/test gaps closer than this count as equal"),
    "COST_RATIO": (COST_RATIO, "time ratio from which one model counts as costlier"),
    "PROBE_MARGIN": (PROBE_MARGIN, "linear-probe accuracies closer than this count as equal"),
    "CORRELATION_MARGIN": (CORRELATION_MARGIN, "mean |correlations| closer than this count as equal"),
    "VISIBLE_PSNR_DB": (VISIBLE_PSNR_DB, "mean PSNRs (dB) closer than this count as no visible difference"),
}
"""Every threshold the verdict rules use: name -> (value, meaning)."""


@dataclass(frozen=True)
class Verdict:
    """A verdict on one claim: ``label`` is one of :data:`VERDICT_LABELS`, ``reason`` says why."""

    label: str
    reason: str

    def __post_init__(self) -> None:
        if self.label not in VERDICT_LABELS:
            raise ValueError(f"unknown verdict {self.label!r}; choose one of {', '.join(VERDICT_LABELS)}")

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


def compare(favoured: float, other: float, higher_is_better: bool = True, margin: float = 0.0,
            relative: bool = False) -> int:
    """+1 if ``favoured`` beats ``other`` by more than ``margin``, -1 if it loses by more, 0 if within.

    With ``relative=True`` the margin is a fraction of ``|other|``.
    """
    if not (math.isfinite(favoured) and math.isfinite(other)):
        raise ValueError(f"cannot compare non-finite values {favoured} and {other}")
    diff = favoured - other if higher_is_better else other - favoured
    limit = margin * abs(other) if relative else margin
    return 1 if diff > limit else -1 if diff < -limit else 0


def _combine(outcomes: dict[str, int], who: str = "the VAE") -> Verdict:
    """All measures favour the claim: holds; none does: does not hold; a mix: depends on the measure."""
    ahead = [name for name, c in outcomes.items() if c > 0]
    rest = [name for name, c in outcomes.items() if c <= 0]
    if not rest:
        return Verdict(HOLDS, f"{who} is ahead on every measure ({', '.join(ahead)})")
    if not ahead:
        return Verdict(DOES_NOT_HOLD, f"{who} is not ahead on any measure ({', '.join(rest)})")
    return Verdict(DEPENDS, f"on the measure: {who} is ahead on {', '.join(ahead)}, not on {', '.join(rest)}")


def verdict_latent_space(
    interp_conf_ae: float, interp_conf_vae: float, random_conf_ae: float, random_conf_vae: float,
    max_step_ae: float, max_step_vae: float,
) -> Verdict:
    """Claim: AE codes are isolated points with holes, the VAE's latent space is continuous.

    Holds when the VAE is ahead on all three: classifier confidence along interpolation paths and at
    random points of the code box (by more than :data:`CONFIDENCE_MARGIN`), and a smaller largest step
    along the paths (by more than :data:`SMOOTHNESS_MARGIN`, relative).
    """
    return _combine(
        {
            "confidence along paths": compare(interp_conf_vae, interp_conf_ae, True, CONFIDENCE_MARGIN),
            "confidence at random points": compare(random_conf_vae, random_conf_ae, True, CONFIDENCE_MARGIN),
            "path smoothness": compare(max_step_vae, max_step_ae, False, SMOOTHNESS_MARGIN, relative=True),
        }
    )


def verdict_generation(fld_ae_prior: float, fld_vae_prior: float, fld_ae_fitted: float) -> Verdict:
    """Claim: generating new samples is hard with an AE and easy with a VAE (sample the prior N(0, I)).

    Does not hold if the VAE's prior samples are not clearly closer to real digits (FLD lower by more than
    :data:`FLD_MARGIN`, relative) than the AE's N(0, I) samples. If they are, but a Gaussian fitted to the
    AE's codes does about as well as the VAE (or better), it depends on how the AE is sampled.
    """
    if compare(fld_vae_prior, fld_ae_prior, False, FLD_MARGIN, relative=True) <= 0:
        return Verdict(DOES_NOT_HOLD, f"N(0, I) samples: VAE FLD {fld_vae_prior:.3g} is not clearly below "
                                      f"the AE's {fld_ae_prior:.3g}")
    if compare(fld_ae_fitted, fld_vae_prior, False, FLD_MARGIN, relative=True) >= 0:
        return Verdict(DEPENDS, f"on how the AE is sampled: from N(0, I) it fails (FLD {fld_ae_prior:.3g}), "
                                f"from a Gaussian fitted to its codes it matches the VAE (FLD "
                                f"{fld_ae_fitted:.3g} vs {fld_vae_prior:.3g})")
    return Verdict(HOLDS, f"VAE prior FLD {fld_vae_prior:.3g} beats the AE from N(0, I) ({fld_ae_prior:.3g}) "
                          f"and from a fitted Gaussian ({fld_ae_fitted:.3g})")


def verdict_anomaly(auroc_ae: float, auroc_vae: float) -> Verdict:
    """Claim: anomaly detection is an application of the VAE (and, in the article's text, of the AE).

    Holds when the VAE's negative ELBO reaches :data:`AUROC_USEFUL`; the reason says how the AE's
    reconstruction error compares (equal within :data:`AUROC_MARGIN`).
    """
    if auroc_vae < AUROC_USEFUL:
        other = "the AE's reconstruction error does" if auroc_ae >= AUROC_USEFUL else "neither does the AE's"
        return Verdict(DOES_NOT_HOLD, f"the VAE's -ELBO separates the unseen digit poorly (AUROC "
                                      f"{auroc_vae:.2f} < {AUROC_USEFUL}); {other} ({auroc_ae:.2f})")
    c = compare(auroc_vae, auroc_ae, True, AUROC_MARGIN)
    how = {1: "better than", 0: "about as good as", -1: "worse than"}[c]
    return Verdict(HOLDS, f"VAE AUROC {auroc_vae:.2f}, {how} the AE's {auroc_ae:.2f}")


def verdict_outliers(shift_ae: float, shift_vae: float) -> Verdict:
    """Claim: the AE is more sensitive to outliers in the training data than the VAE.

    ``shift_*`` is the relative change of the clean test MSE caused by the corrupted training images.
    Holds when the AE's shift exceeds the VAE's by more than :data:`OUTLIER_SHIFT_MARGIN`.
    """
    c = compare(shift_ae, shift_vae, True, OUTLIER_SHIFT_MARGIN)
    text = f"test MSE moved {shift_ae:+.1%} (AE) vs {shift_vae:+.1%} (VAE)"
    if c > 0:
        return Verdict(HOLDS, text)
    return Verdict(DOES_NOT_HOLD, text + ("; the VAE moved more" if c < 0 else "; no clear difference"))


def verdict_denoising(psnr_noisy: float, psnr_ae: float, psnr_vae: float) -> Verdict:
    """Claim: denoising is an application of the AE.

    Holds when the AE's output is at least :data:`DENOISE_GAIN_DB` closer to the clean images than the
    noisy input; the reason says whether the VAE denoises too.
    """
    gain_ae, gain_vae = psnr_ae - psnr_noisy, psnr_vae - psnr_noisy
    vae_too = "the VAE too" if gain_vae >= DENOISE_GAIN_DB else "the VAE does not"
    text = f"AE {gain_ae:+.1f} dB, VAE {gain_vae:+.1f} dB over the noisy input"
    if gain_ae >= DENOISE_GAIN_DB:
        return Verdict(HOLDS, f"{text} ({vae_too})")
    return Verdict(DOES_NOT_HOLD, text)


def verdict_overfitting(gap_ae: float, gap_vae_beta0: float, gap_vae_beta1: float) -> Verdict:
    """Claim: the VAE is regularised (by its KL term) and overfits less than the AE.

    Compares relative train/test gaps at the end of training on a small subset: the VAE at beta = 1 against
    the same VAE at beta = 0 (is it the KL term?) and against the AE; better means smaller by more than
    :data:`GAP_MARGIN`.
    """
    return _combine(
        {
            "gap vs beta = 0": compare(gap_vae_beta1, gap_vae_beta0, False, GAP_MARGIN),
            "gap vs AE": compare(gap_vae_beta1, gap_ae, False, GAP_MARGIN),
        },
        who="the VAE (beta = 1)",
    )


def verdict_training_cost(seconds_to_target_ae: float, seconds_to_target_vae: float) -> Verdict:
    """Claim: the VAE's training is more involved (sampling, KL term) than the AE's.

    Holds when the VAE needs at least :data:`COST_RATIO` times the AE's training time to reach the common
    test MSE; if the AE needs that much more, the opposite is true; otherwise they cost about the same.
    """
    ratio = seconds_to_target_vae / seconds_to_target_ae
    text = f"the VAE needs {ratio:.2f}x the AE's time to the target test MSE"
    if ratio >= COST_RATIO:
        return Verdict(HOLDS, text)
    if ratio <= 1 / COST_RATIO:
        return Verdict(DOES_NOT_HOLD, text + " (the VAE is cheaper)")
    return Verdict(DOES_NOT_HOLD, text + " (about the same cost)")


def verdict_structure(probe_ae: float, probe_vae: float, corr_ae: float, corr_vae: float) -> Verdict:
    """Claim: the VAE's latent space is more structured / interpretable.

    Measures: linear-probe digit accuracy (higher by more than :data:`PROBE_MARGIN`) and mean |correlation|
    between latent units (lower by more than :data:`CORRELATION_MARGIN`).
    """
    return _combine(
        {
            "linear-probe accuracy": compare(probe_vae, probe_ae, True, PROBE_MARGIN),
            "decorrelated units": compare(corr_vae, corr_ae, False, CORRELATION_MARGIN),
        }
    )


def verdict_reconstruction(psnr_ae: float, psnr_vae: float) -> Verdict:
    """Claim (the article's conclusion): trained well, AE and VAE reconstruct with no visible difference.

    Holds when the mean test PSNRs differ by less than :data:`VISIBLE_PSNR_DB`.
    """
    diff = psnr_ae - psnr_vae
    if abs(diff) < VISIBLE_PSNR_DB:
        return Verdict(HOLDS, f"mean PSNR differs by {abs(diff):.2f} dB (< {VISIBLE_PSNR_DB} dB)")
    better = "AE" if diff > 0 else "VAE"
    return Verdict(DOES_NOT_HOLD, f"the {better} is {abs(diff):.1f} dB better (PSNR {psnr_ae:.1f} AE vs "
                                  f"{psnr_vae:.1f} VAE)")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pipes in cells are escaped)."""
    if any(len(row) != len(header) for row in rows):
        raise ValueError("every row needs one cell per header column")

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
