"""course_lib.experiments.pixel_vs_latent: the pipeline's steps, the measured rows, the table and the goals."""

import re

import pytest
import torch

from course_lib.diffusion import DiffusionHistory, LatentMLP, LatentScaler, NoiseSchedule, PixelUNet
from course_lib.experiments import pixel_vs_latent as E
from course_lib.losses import BetaVAEObjective
from course_lib.measure import Timing
from course_lib.metrics import DigitClassifier
from course_lib.models import build_model, preset_config
from course_lib.train import IMPROVED_BETA, RECIPES, fit


def test_comparison_table_and_goals():
    pixel = E.MethodResult("pixel", 158_033, 52_069_376, 10, 300, 20.0, 12.0, 900.0)
    latent = E.MethodResult("latent", 137_616, 270_336, 10, 300, 20.0, 0.1, 80.0, 476_208, 471_040, 12.0)
    assert latent.flops_per_sample == 10 * 270_336 + 471_040
    text = E.comparison_table(pixel, latent, {"floor": 6.0})
    assert "120.0x" in text and "52.1 M" in text and "real train (300, class-balanced)" in text
    assert "the VAE took 12 s" in text
    goals, report = E.goal_report(pixel, latent, prior_fld=200.0)
    assert [met for *_, met in goals] == [True, True, True] and "NOT" not in report
    goals, report = E.goal_report(pixel, latent, prior_fld=50.0, min_speedup=500)
    assert [met for *_, met in goals] == [False, True, False] and "NOT met" in report


def test_measure_side_charges_the_latent_side_for_its_autoencoder():
    torch.manual_seed(0)
    vae = build_model(preset_config("seed-baseline-vae"))  # decoder 3 -> 64 -> 128 -> 784
    mlp = LatentMLP(3, width=8, depth=1, time_dim=4)
    history = DiffusionHistory(total_steps=10, total_seconds=4.0)
    timing = Timing((0.3, 0.1, 0.2))
    latent = E.measure_side("latent", mlp, history, torch.zeros(7, 1, 28, 28), timing, 5, 12.5, vae, 1.5)
    assert latent.decode_flops == 2 * (3 * 64 + 64 * 128 + 128 * 784)
    assert latent.flops_per_step == 2 * (4 * 4 * 2 + 3 * 8 + 8 * 8 + 4 * 8 + 8 * 8 + 8 * 3)
    assert (latent.n_samples, latent.steps, latent.fld) == (7, 5, 12.5)
    assert latent.train_seconds == 5.5 and latent.autoencoder_seconds == 1.5 and latent.sample_seconds == 0.2
    assert latent.autoencoder_params == sum(p.numel() for p in vae.parameters())
    pixel = E.measure_side("pixel", PixelUNet((8, 8, 8)), history, torch.zeros(7, 1, 28, 28), timing, 5, 3.0)
    assert pixel.decode_flops == 0 and pixel.train_seconds == 4.0 and pixel.flops_per_sample == 5 * pixel.flops_per_step


def test_autoencoder_is_trained_with_the_improved_recipe_and_beta():
    images = torch.rand(64, 1, 28, 28)
    vae, history, seconds = E.train_autoencoder("vae", images, epochs=2, seed=3)
    torch.manual_seed(3)
    expected = build_model(preset_config("seed-improved-vae"))
    recipe = RECIPES["seed-improved"].replace(epochs=2, batch_size=E.BATCH_SIZE, seed=3)
    expected_history = fit(expected, images, recipe, objective=BetaVAEObjective(IMPROVED_BETA), progress=False)
    assert history["train_loss"] == pytest.approx(expected_history["train_loss"])
    assert seconds > 0 and len(history) == 2
    latents, scaler, scaled = E.scaled_latents(vae, images)
    assert latents.shape == (64, 16) and scaler.shift == 0.0 and scaled.std().item() == pytest.approx(1.0, abs=1e-4)
    ae, _, _ = E.train_autoencoder("ae", images, epochs=1)
    assert E.scaled_latents(ae, images)[2].mean().item() == pytest.approx(0.0, abs=1e-4)  # an AE's codes are centred


def test_reference_flds_floor_is_best(mnist5k):
    torch.manual_seed(0)
    classifier = DigitClassifier().eval()
    vae = build_model(preset_config("seed-baseline-vae"))
    references = E.reference_flds(classifier, vae, mnist5k, n=50)
    assert set(references) == {"floor", "reconstructions", "prior"}
    assert references["floor"] < min(references["reconstructions"], references["prior"])
    ae = build_model(preset_config("seed-baseline-ae"))
    assert set(E.reference_flds(classifier, ae, mnist5k, n=50)) == {"floor", "reconstructions"}


def test_sample_both_times_each_side_and_returns_images():
    torch.manual_seed(0)
    unet, mlp = PixelUNet((8, 8, 8)), LatentMLP(3, width=8, depth=1)
    vae = build_model(preset_config("seed-baseline-vae"))
    samples = E.sample_both(unet, mlp, NoiseSchedule(20), vae, LatentScaler(), n=4, steps=2, repeats=2)
    assert samples.pixel.shape == samples.latent.shape == (4, 1, 28, 28)
    assert len(samples.pixel_timing.seconds) == len(samples.latent_timing.seconds) == 2


def test_run_measures_both_sides_end_to_end():
    lines = []
    race = E.run("mnist-5k", budget_s=0.2, steps=2, n_samples=20, ae_epochs=1, classifier_epochs=1, timesteps=20,
                 device="cpu", log=lines.append)
    assert race.kind == "VAE" and set(race.references) == {"floor", "reconstructions", "prior"}
    assert (race.pixel.n_samples, race.latent.n_samples, race.pixel.steps) == (20, 20, 2)
    assert race.latent.autoencoder_seconds > 0 and race.latent.train_seconds > race.latent.autoencoder_seconds
    assert race.pixel.flops_per_step / race.latent.flops_per_step > 100
    assert any(line.startswith("pixel U-Net: ") for line in lines)
    latent_steps = int(re.search(r"latent MLP: (\d+) steps", "\n".join(lines)).group(1))
    assert latent_steps >= E.LATENT_MIN_STEPS  # even though the VAE may have spent the whole budget
