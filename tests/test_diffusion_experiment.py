"""course_lib.experiments.pixel_vs_latent: the pipeline's steps, the measured rows, the table and the goals."""

import re

import pytest
import torch

from course_lib.diffusion import DiffusionHistory, LatentMLP, LatentScaler, NoiseSchedule, PixelUNet
from course_lib.experiments import pixel_vs_latent as E
from course_lib.losses import BetaVAEObjective
from course_lib.measure import Timing
from course_lib.metrics import DigitClassifier
from course_lib.models import build_model, count_parameters, preset_config
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


def test_numbers_in_the_table():
    assert [E._number(v) for v in (float("nan"), 1234, 2_500_000, 12.3456, 1234.7, 999.0, 0.000123, -5000)] == [
        "-", "1,234", "2.5 M", "12.3", "1,235", "999", "0.000123", "-5,000"]


def test_comparison_table_rows_ratios_and_references():
    pixel = E.MethodResult("pixel", 2000, 4_000_000, 10, 30, 20.0, 12.0, 900.0)
    latent = E.MethodResult("latent", 1000, 40_000, 10, 30, 10.0, 0.5, 80.0, 5000, 3000, 4.0)
    text = E.comparison_table(pixel, latent, {"floor": 6.0, "prior": 120.0, "other": 1.5}, kind="AE")
    # ratios by hand: 40 M / (10 x 40,000 + 3,000) = 99.3; 900 / 80 = 11.25; no ratio where a side is 0
    assert text == """\
                                           pixel   latent  pixel/latent
-----------------------------------------  -----  -------  ------------
denoiser parameters                        2,000    1,000          2.0x
autoencoder parameters (decoder used)          0    5,000             -
FLOPs per denoising step, per image          4 M   40,000        100.0x
FLOPs of decoding, per image (once)            0    3,000             -
FLOPs per generated image (10 steps)        40 M  403,000         99.3x
training time, s (latent: AE + diffusion)     20       10          2.0x
sampling time for 30 images, s (median)       12      0.5         24.0x
FLD to the test set (lower is better)        900       80         11.2x
(of the latent side's training time, the AE took 4 s)

FLD references (same classifier, same test set)           FLD
--------------------------------------------------------  ---
real train (30, class-balanced) vs real test (the floor)    6
AE decoded from its N(0, I) prior (30, no diffusion)      120
other                                                     1.5"""
    plain = E.comparison_table(pixel, E.MethodResult("latent", 1, 1, 10, 30, 1.0, 1.0, 1.0)).splitlines()
    assert len(plain) == 10  # no autoencoder seconds, no references


def test_goal_report_boundaries_and_reasons():
    pixel = E.MethodResult("pixel", 1, 1000, 10, 30, 20.0, 10.0, 100.0)
    latent = E.MethodResult("latent", 1, 10, 10, 30, 20.0, 0.2, 100.0)
    goals, text = E.goal_report(pixel, latent, prior_fld=100.0, min_speedup=50)
    assert [(measured, met) for _, measured, met in goals] == [("50.0x", True), ("100 vs 100", True),
                                                               ("100 vs 100", False)]
    assert goals[0][0] == "latent sampling >= 50x faster than pixel sampling (same steps, same batch)"
    lines = text.splitlines()
    assert lines[0].startswith("[    met] latent sampling >= 50x") and lines[1].startswith("[    met] latent FLD no")
    assert lines[2] == "[NOT met] latent FLD better than the VAE's own prior samples: 100 vs 100"
    assert lines[3].startswith("  why: the latent model's share of the budget") and len(lines) == 4
    slow = E.MethodResult("latent", 1, 0, 10, 30, 20.0, 1.0, 150.0)
    goals, text = E.goal_report(pixel, slow, prior_fld=200.0)
    assert [met for *_, met in goals] == [False, False, True]
    assert "the FLOP ratio per step is 1,000x" in text and "the pixel model had enough time to fit" in text


def test_reference_flds_judge_the_right_image_sets(mnist5k, monkeypatch):
    calls = []
    monkeypatch.setattr(E, "fld", lambda classifier, a, b: calls.append((a, b)) or float(len(calls)))
    torch.manual_seed(0)
    vae = build_model(preset_config("seed-baseline-vae"))
    data = mnist5k
    references = E.reference_flds(None, vae, data, n=30, seed=2)
    assert references == {"floor": 1.0, "reconstructions": 2.0, "prior": 3.0}
    (floor, test1), (recon, test2), (prior, test3) = calls
    assert test1 is test2 is test3 is data.test_images
    train_idx = E.balanced_subset(data.train_labels, 30, seed=2)
    assert torch.equal(floor, data.train_images[train_idx])
    test_idx = E.balanced_subset(data.test_labels, 30, seed=2)
    assert torch.allclose(recon, E.reconstruct(vae, data.test_images[test_idx]))
    assert torch.allclose(prior, E.sample_prior(vae, 30, seed=2))
    calls.clear()
    E.reference_flds(None, vae, data, n=2000)  # more than the 1,000 test images: all of them, once each
    assert calls[1][0].shape == (1000, 1, 28, 28)


def test_denoisers_are_seeded_and_about_the_same_size():
    unet, mlp = E.build_denoisers(16, "cpu", seed=3)
    torch.manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(unet.parameters(), PixelUNet((16, 32, 64)).parameters()))
    torch.manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(mlp.parameters(), LatentMLP(16, width=128, depth=3).parameters()))
    ratio = count_parameters(unet) / count_parameters(mlp)
    assert 0.8 < ratio < 1.5 and mlp.latent_dim == 16


def test_each_side_trains_on_its_own_data_and_budget(monkeypatch):
    calls = []
    monkeypatch.setattr(E, "train_diffusion", lambda model, schedule, data, **kw: calls.append((data, kw)) or kw)
    images = torch.rand(6, 1, 28, 28)
    E.train_pixel_side("unet", "schedule", images, budget_s=30.0, seed=4)
    data, kwargs = calls[-1]
    assert torch.allclose(data, images * 2 - 1)
    assert kwargs == {"budget_s": 30.0, "batch_size": E.BATCH_SIZE, "lr": E.LR, "seed": 4, "log_every": 5}
    E.train_latent_side("mlp", "schedule", images, budget_s=30.0, autoencoder_s=12.0, seed=4)
    data, kwargs = calls[-1]
    assert data is images
    assert kwargs == {"budget_s": 18.0, "batch_size": E.BATCH_SIZE, "lr": E.LR, "seed": 4,
                      "min_steps": E.LATENT_MIN_STEPS}
    E.train_latent_side("mlp", "schedule", images, budget_s=30.0, autoencoder_s=45.0)
    assert calls[-1][1]["budget_s"] == 0.0 and calls[-1][1]["seed"] == 0


def test_sample_both_draws_each_side_with_the_seed():
    torch.manual_seed(0)
    unet, mlp = PixelUNet((8, 8, 8)), LatentMLP(3, width=8, depth=1)
    vae, schedule, scaler = build_model(preset_config("seed-baseline-vae")), NoiseSchedule(20), LatentScaler(2.0)
    samples = E.sample_both(unet, mlp, schedule, vae, scaler, n=3, steps=2, seed=7, repeats=1)
    assert torch.equal(samples.pixel, E.sample_pixel_images(unet, schedule, 3, 2, seed=7))
    assert torch.equal(samples.latent, E.sample_latent_images(mlp, schedule, vae, scaler, 3, 2, seed=7))
    assert len(samples.pixel_timing.seconds) == 1


def test_train_judge_reports_test_accuracy(mnist5k, monkeypatch):
    seen = {}

    def fake_train(images, labels, epochs, seed):
        seen.update(images=images, labels=labels, epochs=epochs, seed=seed)
        return "classifier"

    monkeypatch.setattr(E, "train_classifier", fake_train)
    monkeypatch.setattr(E, "accuracy", lambda classifier, images, labels: (classifier, images, labels))
    classifier, accuracy = E.train_judge(mnist5k, epochs=3, seed=2)
    assert classifier == "classifier" and seen["epochs"] == 3 and seen["seed"] == 2
    assert seen["images"] is mnist5k.train_images and seen["labels"] is mnist5k.train_labels
    assert accuracy == ("classifier", mnist5k.test_images, mnist5k.test_labels)


def test_goal_report_text_when_no_goal_is_met():
    pixel = E.MethodResult("pixel", 1, 1000, 10, 30, 20.0, 1.0, 100.0)
    latent = E.MethodResult("latent", 1, 10, 10, 30, 20.0, 0.5, 150.0)
    _, text = E.goal_report(pixel, latent, prior_fld=150.0)
    assert text == "\n".join([
        "[NOT met] latent sampling >= 50x faster than pixel sampling (same steps, same batch): 2.0x",
        "  why: fixed per-step costs (Python, dispatch, GPU kernel launches) dominate both models at this batch; "
        "the FLOP ratio per step is 100x",
        "[NOT met] latent FLD no worse than pixel FLD at the same training wall-clock: 150 vs 100",
        "  why: the pixel model had enough time to fit, and the VAE decoder's blur (its reconstruction FLD) caps "
        "the latent side",
        "[NOT met] latent FLD better than the VAE's own prior samples: 150 vs 150",
        "  why: the latent model's share of the budget (after the VAE) was too short to model the latents better "
        "than N(0, I); raise the budget",
    ])


def test_reference_labels_name_the_vae_by_default():
    assert E.reference_labels(7) == {
        "floor": "real train (7, class-balanced) vs real test (the floor)",
        "reconstructions": "VAE reconstructions of 7 test images (latent diffusion's cap)",
        "prior": "VAE decoded from its N(0, I) prior (7, no diffusion)",
    }


def test_numbers_at_the_boundaries_of_each_format():
    assert [E._number(v) for v in (1000, 999_999, 1_000_000, 1000.5, 999.5)] == [
        "1,000", "999,999", "1 M", "1,000", "1e+03"]
    pixel = E.MethodResult("pixel", 1, 1, 10, 30, 1.0, 1.0, 1.0)
    text = E.comparison_table(pixel, pixel, {"floor": 1234.0})
    assert text.splitlines()[-1].endswith("1.23e+03")


def test_run_passes_each_step_what_it_needs(monkeypatch):
    """The pipeline's wiring, with every step replaced by a recorder: which seed, budget, epochs and data go where."""
    calls = {}
    data = E.Dataset("d", torch.zeros(4, 1, 28, 28), torch.arange(4), torch.ones(2, 1, 28, 28), torch.arange(2), "s")

    def record(name, result):
        def step(*args):
            calls[name] = args
            return result(*args) if callable(result) else result
        return step

    history = DiffusionHistory(total_steps=3, total_seconds=1.0, losses=[1.0, 0.5])
    monkeypatch.setattr(E, "load_dataset", record("load_dataset", data))
    monkeypatch.setattr(E, "train_judge", record("train_judge", ("judge", 0.9)))
    monkeypatch.setattr(E, "build_denoisers", record("build_denoisers", ("unet", "mlp")))
    monkeypatch.setattr(E, "train_pixel_side", record("train_pixel_side", history))
    ae_history = E.History([{"train_loss": 2.0}])
    monkeypatch.setattr(E, "train_autoencoder", record("train_autoencoder", ("ae", ae_history, 30.0)))
    monkeypatch.setattr(E, "scaled_latents", record("scaled_latents", (None, LatentScaler(2.0), "scaled")))
    monkeypatch.setattr(E, "train_latent_side", record("train_latent_side", history))
    samples = E.Samples("pixel images", "latent images", Timing((1.0,)), Timing((0.1,)))
    monkeypatch.setattr(E, "sample_both", record("sample_both", samples))
    monkeypatch.setattr(E, "fld", lambda classifier, a, b: {"pixel images": 100.0, "latent images": 50.0}[a])
    monkeypatch.setattr(E, "measure_side", lambda *args: args)
    monkeypatch.setattr(E, "reference_flds", record("reference_flds", {"floor": 1.0}))
    lines = []
    race = E.run("d", budget_s=20.0, steps=4, n_samples=6, ae_epochs=3, classifier_epochs=2, timesteps=50, seed=7,
                 device="cpu", log=lines.append)
    assert calls["load_dataset"] == ("d",)
    assert calls["train_judge"] == (data, 2, 7)
    assert calls["build_denoisers"] == (16, torch.device("cpu"), 7)  # the improved VAE's latent dimension
    unet, schedule, images, budget, seed = calls["train_pixel_side"]
    assert (unet, budget, seed) == ("unet", 20.0, 7) and images is data.train_images
    assert schedule.timesteps == 50
    assert calls["train_autoencoder"] == ("vae", data.train_images, 3, 7)
    assert calls["scaled_latents"] == ("ae", data.train_images)
    assert calls["train_latent_side"][2:] == ("scaled", 20.0, 30.0, 7) and calls["train_latent_side"][0] == "mlp"
    assert calls["sample_both"][2:] == (schedule, "ae", calls["sample_both"][4], 6, 4, 7)
    assert race.pixel == ("pixel", "unet", history, "pixel images", samples.pixel_timing, 4, 100.0)
    assert race.latent == ("latent", "mlp", history, "latent images", samples.latent_timing, 4, 50.0, "ae", 30.0)
    assert calls["reference_flds"] == ("judge", "ae", data, 6, 7) and race.references == {"floor": 1.0}
    assert race.kind == "VAE"
    assert any(line.startswith("warning: the VAE took 30.0 s of the 20 s budget") for line in lines)
    assert any(line.startswith("VAE: 3 epochs in 30.0 s, loss 2, LatentScaler(") for line in lines)
    lines.clear()
    monkeypatch.setattr(E, "train_autoencoder", record("train_autoencoder", ("ae", ae_history, 20.0)))
    E.run("d", budget_s=20.0, steps=4, n_samples=6, ae_epochs=3, classifier_epochs=2, autoencoder="ae",
          log=lines.append)
    assert any(line.startswith("warning: the AE took 20.0 s") for line in lines)  # the whole budget is too much
    assert calls["train_judge"][2] == 0 and calls["train_pixel_side"][1].timesteps == 1000  # the defaults


def test_measure_side_counts_the_denoisers_parameters():
    mlp = LatentMLP(3, width=8, depth=1, time_dim=4)
    side = E.measure_side("mine", mlp, DiffusionHistory(total_seconds=1.0), torch.zeros(2, 1, 28, 28),
                          Timing((0.5,)), 2, 1.0)
    assert side.name == "mine" and side.denoiser_params == count_parameters(mlp)


def test_defaults_of_the_pipeline_steps():
    unet, mlp = E.build_denoisers(3, "cpu")
    again, _ = E.build_denoisers(3, "cpu", seed=0)
    assert all(torch.equal(a, b) for a, b in zip(unet.parameters(), again.parameters())) and len(mlp.blocks) == 3
    torch.manual_seed(0)
    small_unet, small_mlp = PixelUNet((8, 8, 8)), LatentMLP(3, width=8, depth=1)
    vae, schedule = build_model(preset_config("seed-baseline-vae")), NoiseSchedule(20)
    samples = E.sample_both(small_unet, small_mlp, schedule, vae, LatentScaler(), n=2, steps=2)
    assert len(samples.pixel_timing.seconds) == 3  # the median of three runs
    assert torch.equal(samples.latent, E.sample_latent_images(small_mlp, schedule, vae, LatentScaler(), 2, 2, seed=0))
    images = torch.rand(16, 1, 28, 28)
    ae, history, _ = E.train_autoencoder("ae", images, epochs=1)
    torch.manual_seed(0)
    expected = build_model(preset_config("seed-improved-ae"))
    recipe = RECIPES["seed-improved"].replace(epochs=1, batch_size=E.BATCH_SIZE, seed=0)
    assert history["train_loss"] == pytest.approx(fit(expected, images, recipe, progress=False)["train_loss"])
