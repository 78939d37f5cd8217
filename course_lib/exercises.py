"""Every notebook's exercises, checked one way: a placeholder says "not answered yet", a wrong answer gets a hint,
a right one is accepted, and the expected value is printed beside the learner's. The solutions live here and are
shown on request (:func:`show_solution`), never in the notebook.

Under test (``COURSE_SOLVE_EXERCISES=1``, set by ``make test``) a placeholder is replaced by the stored solution,
evaluated in the notebook's namespace, and the check raises if that solution fails or if a stored plausible wrong
answer passes: nbval then proves that every exercise can be solved with what the notebook provides, and that its
check tells a right answer from a wrong one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from IPython.display import Markdown, display

SOLVE = os.environ.get("COURSE_SOLVE_EXERCISES", "0").strip().lower() in {"1", "true", "yes", "on"}
"""True under test: placeholders are answered with the stored solutions."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: a stored solution and a plausible wrong answer (Python expressions in the notebook's names),
    and a hint for wrong answers. Numbers are accepted within ``rel_tol`` (and ``abs_tol``) of the expected value;
    tensors elementwise.
    """

    solution: str
    wrong: str
    hint: str
    rel_tol: float = 1e-6
    abs_tol: float = 0.0


EXERCISES: dict[str, Exercise] = {}
"""Key "NN.k": notebook NN, exercise k (see the end of this module)."""

Expected = Any | Callable[[Any], bool]
"""The expected value, or a predicate that a right answer satisfies (when many answers are right)."""


def matches(answer: Any, expected: Expected, rel_tol: float = 1e-6, abs_tol: float = 0.0) -> bool:
    """Whether ``answer`` is right: a predicate's verdict, numbers within tolerance, tensors elementwise, else ==."""
    if callable(expected):
        return bool(expected(answer))
    if isinstance(answer, torch.Tensor) or isinstance(expected, torch.Tensor):
        answer, expected = torch.as_tensor(answer).double(), torch.as_tensor(expected).double()
        return answer.shape == expected.shape and torch.allclose(answer, expected, rtol=rel_tol, atol=abs_tol)
    if isinstance(answer, bool) or isinstance(expected, bool):
        return answer is expected
    if isinstance(answer, int | float) and isinstance(expected, int | float):
        return math.isclose(answer, expected, rel_tol=rel_tol, abs_tol=abs_tol)
    return answer == expected


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, torch.Tensor) and value.numel() > 8:
        return f"a tensor of shape {tuple(value.shape)}"
    return repr(value)


def check(key: str, answer: Any, expected: Expected, namespace: dict[str, Any] | None = None,
          describe: str | None = None) -> bool:
    """Check the learner's ``answer`` to exercise ``key``; print the verdict beside the expected value.

    ``answer`` is ``...`` until the learner replaces it. ``describe`` says in words what a predicate expects.
    ``namespace`` (pass ``globals()``) is where a stored solution is evaluated under test.
    """
    exercise = EXERCISES[key]
    source = "yours"
    if answer is Ellipsis:
        if not SOLVE:
            print(f"exercise {key}: not answered yet (replace the ... in your cell; show_solution({key!r}) shows one)")
            return False
        answer, source = eval(exercise.solution, namespace or {}), "stored solution"  # noqa: S307 (our own text)
    right = matches(answer, expected, exercise.rel_tol, exercise.abs_tol)
    wanted = describe or _shown(expected)
    print(f"exercise {key}: {'right' if right else 'not yet'}: {source} {_shown(answer)}, expected {wanted}")
    if not right:
        print(f"  hint: {exercise.hint}")
    if source == "stored solution":
        if not right:
            raise AssertionError(f"the stored solution of exercise {key} fails its own check")
        wrong = eval(exercise.wrong, namespace or {})  # noqa: S307 (our own text)
        if matches(wrong, expected, exercise.rel_tol, exercise.abs_tol):
            raise AssertionError(f"exercise {key}'s check accepts the wrong answer {exercise.wrong!r}")
        print(f"  (and it rejects the plausible wrong answer {exercise.wrong}: {_shown(wrong)})")
    return right


def show_solution(key: str) -> None:
    """Display the stored solution of exercise ``key`` (try the exercise first)."""
    display(Markdown(f"Exercise {key}, one solution:\n```python\nanswer = {EXERCISES[key].solution}\n```"))


# ----------------------------------------------------------------------------------------------------------
# Notebooks 00-03
# ----------------------------------------------------------------------------------------------------------

# 00 welcome: what one denoising step costs
EXERCISES["00.1"] = Exercise(
    solution="flops_pixel * (8 * 8) / (28 * 28)",
    wrong="flops_pixel * 8 / 28",
    hint="a convolution does the same work at every position: scale by the number of positions, 8 x 8 against "
    "28 x 28, not by the side length",
)
EXERCISES["00.2"] = Exercise(
    solution="flops_decoder / (T * flops_mlp_latent + flops_decoder)",
    wrong="flops_decoder / (flops_mlp_latent + flops_decoder)",
    hint="one image costs T denoising steps plus one decoding: the total is T * flops_mlp_latent + flops_decoder",
)
EXERCISES["00.3"] = Exercise(
    solution="(512 / 32) ** 2",
    wrong="sd_ratio",
    hint="count positions (height x width), not values: the 16 latent channels are all there at every position, "
    "and a convolution's cost grows with the positions",
)

# 01 autoencoder theory
EXERCISES["01.1"] = Exercise(
    solution="count_parameters(ae) + (64 * 16 + 16) + 16 * 64",
    wrong="count_parameters(ae) + 64 * 16 + 16",
    hint="the code size d appears in two layers: the encoder's last Linear(64, d) (64 d weights and d biases) "
    "and the decoder's first Linear(d, 64) (64 d weights; its 64 biases do not depend on d)",
)
EXERCISES["01.2"] = Exercise(
    solution="((test_x.cpu().flatten(1).double() - pca.mean).pow(2).sum(1) "
    "- pca.encode(test_x.cpu()).double().pow(2).sum(1)).mean().item() / 784",
    wrong="(test_x.cpu().flatten(1).double().pow(2).sum(1) "
    "- pca.encode(test_x.cpu()).double().pow(2).sum(1)).mean().item() / 784",
    hint="the code measures the centred image: subtract pca.mean from the images before taking their squared "
    "length, then divide the mean squared residual by 784 pixels (no clamping)",
    rel_tol=1e-4,
)
EXERCISES["01.3"] = Exercise(
    solution="-10 * math.log10(pca_mse)",
    wrong="pca_psnr",
    hint="take the PSNR of the average MSE, -10 log10(pca_mse), not the table's average of per-image PSNRs",
    rel_tol=1e-5,
)
EXERCISES["01.4"] = Exercise(
    solution="784 * (ae_metrics['mse'] / (2 * 0.1**2) + 0.5 * math.log(2 * math.pi * 0.1**2))",
    wrong="784 * ae_metrics['mse'] / (2 * 0.1**2)",
    hint="a density's normalising constant counts: each pixel adds 1/2 log(2 pi sigma^2) nats to the squared "
    "error term (x - x_hat)^2 / (2 sigma^2)",
    rel_tol=1e-4,
)

# 02 VAE theory
EXERCISES["02.1"] = Exercise(
    solution="LATENT_DIM * 0.5 * (0.5**2 + math.exp(-1.0) - (-1.0) - 1)",
    wrong="0.5 * (0.5**2 + math.exp(-1.0) - (-1.0) - 1)",
    hint="the units are independent, so their KLs add up: the per-unit KL 1/2 (mu^2 + sigma^2 - log sigma^2 - 1), "
    "with sigma^2 = exp(logvar), times 16 units",
    rel_tol=1e-5,
)
EXERCISES["02.2"] = Exercise(
    solution="PIXELS / LATENT_DIM",
    wrong="PIXELS",
    hint="the mean now divides the KL by the 16 units as well as the BCE by the 784 pixels: write 784 x loss as "
    "BCE + beta x KL and read off beta",
    rel_tol=1e-4,
)
EXERCISES["02.3"] = Exercise(
    solution="losses.kl_per_unit(*vaes[1.0].eval().encode(test_x)).mean(0).max().item()",
    wrong="metrics[1.0]['kl'] / LATENT_DIM",
    hint="average each unit's KL over the test images first (kl_per_unit(mu, logvar).mean(0), 16 numbers), then "
    "take the largest; the total KL divided by 16 is the average unit, not the busiest one",
    rel_tol=1e-4,
)

# 03 baseline
EXERCISES["03.1"] = Exercise(
    solution="article_printed_loss(ae, data.train_images, batch_size=1024)",
    wrong="printed['AE']",
    hint="nn.MSELoss() averages within each batch and the article divides the sum of batch means by the number "
    "of images: the printout is about the MSE per pixel divided by the batch size, now 1024",
    rel_tol=0.03,
)
EXERCISES["03.2"] = Exercise(
    solution="evaluate(vae, rotated_test)['mse'] / metrics['VAE']['mse'] - 1",
    wrong="mse_rotated / mse_clean - 1",
    hint="evaluate the VAE, not the AE, on the same rotated images (rotated_test), and divide by the VAE's "
    "clean test MSE",
    rel_tol=1e-4,
    abs_tol=1e-6,
)
EXERCISES["03.3"] = Exercise(
    solution="torch.exp(0.5 * vae.encode(data.test_images)[1]).mean().item()",
    wrong="torch.exp(vae.encode(data.test_images)[1]).mean().item()",
    hint="the encoder's second output is log sigma^2: sigma = exp(logvar / 2), as in reparameterize",
    rel_tol=1e-4,
)

# ----------------------------------------------------------------------------------------------------------
# Notebooks 04-07
# ----------------------------------------------------------------------------------------------------------

EXERCISES["04.1"] = Exercise(
    solution="(math.ceil(54_000 / 1024) * 500) / (math.ceil(54_000 / 128) * 200)",
    wrong="(54_000 / 1024 * 500) / (54_000 / 128 * 200)",
    hint="an epoch takes ceil(images / batch size) optimizer steps (the last, smaller batch counts as one step); "
    "times the epochs. 500 / 200 compares epochs, not steps.",
)
EXERCISES["04.2"] = Exercise(
    solution="{imp.label for imp, on_ladder, left_out in zip(recipes.IMPROVEMENTS, ladder_verdicts, loo_verdicts) "
    'if on_ladder["ae_mse_verdict"] != left_out["ae_mse_verdict"]}',
    wrong="{imp.label for imp, on_ladder, left_out in zip(recipes.IMPROVEMENTS, ladder_verdicts, loo_verdicts) "
    'if on_ladder["ae_mse_verdict"] == left_out["ae_mse_verdict"]}',
    hint="pair the two lists in the improvements' order and keep the labels whose two AE verdicts "
    "(row['ae_mse_verdict']) differ, not those where they agree.",
)
EXERCISES["04.3"] = Exercise(
    solution="set(recipes.changes(recipes.article_improved_recipe(), recipes.full_recipe()))",
    wrong="set(recipes.changes(ladder[6], ladder[7]))",
    hint="recipes.changes(a, b) lists the fields that differ between two recipes; compare the article's own "
    "improved recipe with the course's full recipe, not two rungs of the ladder.",
)

EXERCISES["05.1"] = Exercise(
    solution='(results.vae(16, 1.0).metrics["distortion"] - results.vae(16, 0.5).metrics["distortion"]) '
    '/ (results.vae(16, 1.0).metrics["kl"] - results.vae(16, 0.5).metrics["kl"])',
    wrong='(results.vae(16, 1.0).metrics["bce"] - results.vae(16, 0.5).metrics["bce"]) '
    '/ (results.vae(16, 1.0).metrics["kl"] - results.vae(16, 0.5).metrics["kl"])',
    hint="the distortion D of section 3 is the reconstruction term with a sampled z, in nats per image "
    "(metrics['distortion']; metrics['bce'] is the reconstruction at z = mu), the rate R the KL (metrics['kl']); "
    "the slope is (D at beta 1 - D at beta 0.5) / (R at beta 1 - R at beta 0.5).",
    rel_tol=1e-3,
)
EXERCISES["05.2"] = Exercise(
    solution="results.vae(2, 1.0).test_codes.std(dim=0)",
    wrong="torch.ones(2)",
    hint="one standard deviation per latent unit, over the 1,000 test latent means: test_codes.std(dim=0). "
    "The prior's std is 1, but mu(x) is only the centre of each image's q(z|x), which has a spread of its own.",
    rel_tol=1e-3,
)
EXERCISES["05.3"] = Exercise(
    solution="explorer2.nearest(0.0, 0.0)[1]",
    wrong="explorer2.nearest(0.0, 0.0)[0]",
    hint="explorer2.nearest(z1, z2) returns (test image index, digit, distance): the digit is the second value.",
)

EXERCISES["06.1"] = Exercise(
    solution="int((schedule.alphas_cumprod < 0.5).nonzero()[0, 0]) + 1",
    wrong="int((schedule.alphas_cumprod < 0.5).nonzero()[0, 0])",
    hint="the noise weight sqrt(1 - alpha-bar) exceeds the signal weight sqrt(alpha-bar) when alpha-bar < 0.5; "
    "index i of schedule.alphas_cumprod holds alpha-bar at t = i + 1.",
)
EXERCISES["06.2"] = Exercise(
    solution="(latent.history.total_steps / latent.history.total_seconds) "
    "/ (pixel.history.total_steps / pixel.history.total_seconds)",
    wrong="latent.history.total_steps / pixel.history.total_steps",
    hint="steps per second of each side's diffusion training (total_steps / total_seconds), latent over pixel; "
    "a ratio of total steps ignores that the two sides trained for different numbers of steps.",
    rel_tol=1e-3,
)
EXERCISES["06.3"] = Exercise(
    solution="(unet_flops - decode_flops) // mlp_flops",
    wrong="unet_flops // mlp_flops",
    hint="S * mlp_flops + decode_flops <= unet_flops: take the decoder pass off first, then divide "
    "and round down.",
)

EXERCISES["07.1"] = Exercise(
    solution="3 / 4",
    wrong="1 / 4",
    hint="pair each anomaly (label 1) with each normal image (label 0): 2 x 2 = 4 pairs; count the pairs in "
    "which the anomaly has the higher score.",
)
EXERCISES["07.2"] = Exercise(
    solution="claims.ks_to_standard_normal(torch.tensor([[-1.0], [-0.5], [0.0], [0.5], [1.0]])).item()",
    wrong="max(abs((i + 0.5) / 5 - 0.5 * (1 + math.erf(x / math.sqrt(2))))\n"
    "    for i, x in enumerate([-1.0, -0.5, 0.0, 0.5, 1.0]))",
    hint="at each value x_i (sorted, i = 0..4) compare Phi(x_i) with the empirical function just after the step, "
    "(i + 1) / 5, and just before it, i / 5 (not with the middle of the step); the KS distance is the largest gap.",
    rel_tol=1e-4,
)
EXERCISES["07.3"] = Exercise(
    solution='"inconclusive"',
    wrong='"holds"',
    hint="holds needs the interval to exclude 0 (low > 0) and the estimate to reach the threshold; does not hold "
    "needs the whole interval below the threshold (high < 0.02).",
)

EXERCISES["08.1"] = Exercise(
    solution="(7 + 2 * 2 - 5) // 2 + 1",
    wrong="7 // 2",
    hint="the output side is floor((n + 2p - k) / s) + 1 with n = 7, k = 5, s = 2, p = 2: padding adds p on both "
    "sides before the kernel slides.",
)
EXERCISES["08.2"] = Exercise(
    solution="beyond.CONV_WIDTHS[1] * (beyond.CONV_WIDTHS[0] * 4 * 4 + 1)",
    wrong="beyond.CONV_WIDTHS[1] * beyond.CONV_WIDTHS[0] * 4 * 4",
    hint="C_out (C_in k^2 + 1): every output channel has a k x k kernel per input channel, and one bias.",
)
EXERCISES["08.3"] = Exercise(
    solution="((512 * 512 * 3) / (64 * 64 * 4)) / ((28 * 28) / (2 * 7 * 7))",
    wrong="(512 / 64) / (28 / 7)",
    hint="count all the numbers: height x width x channels of the image over those of its latent, for each model; "
    "the side ratios alone forget the channels (3 in, 4 out for SD; 1 in, 2 out here).",
)
