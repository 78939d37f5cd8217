"""course_lib.experiments.pixel_vs_latent: the race's settings, the cached sides, curves, speed and verdicts."""

import re

import pytest
import torch

from course_lib.diffusion import LatentConvNet, NoiseSchedule, PixelUNet, flops_per_image
from course_lib.experiments import pixel_vs_latent as E
from course_lib.experiments.judging import Judge
from course_lib.losses import BetaVAEObjective
from course_lib.measure import Timing, count_flops
from course_lib.metrics import DigitClassifier
from course_lib.models import ModelConfig, build_model, preset_config
from course_lib.train import IMPROVED_BETA, RECIPES, fit

TINY = E.RaceSettings((1, 3), (1, 3, 6), ae_epochs=1, n_samples=6, ddim_steps=2, speed_batches=(2,),
                      speed_steps=(2,), speed_repeats=3, timesteps=10)


@pytest.fixture
def images(mnist5k):
    return mnist5k.train_images[::50]  # 80 digits


def weights(module):
    return torch.cat([v.flatten().float() for v in module.state_dict().values()])


def test_settings_check_their_snapshots_and_describe_themselves():
    for bad in ((), (3, 1), (0, 1), (1, 1)):
        with pytest.raises(ValueError, match="pixel_snapshots must be increasing step counts >= 1"):
            E.RaceSettings(bad, (1,), 1, 1, 1, (1,), (1,))
    assert "pixel U-Net snapshots at 1, 3 steps; latent MLP at 1, 3, 6 steps after a 1-epoch" in TINY.describe()
    reference = E.by_mode(fast=None, reference=E.SETTINGS, full=None)
    if reference is not None:  # reference mode: about 10 minutes of pixel training on 2 cores, 5 snapshots or more
        assert reference.pixel_snapshots[-1] >= 4000 and len(reference.pixel_snapshots) >= 4


def test_autoencoder_has_the_improved_model_and_beta_without_rotations_or_scheduler(images):
    vae, seconds = E.train_autoencoder(E.autoencoder_config("vae"), images, epochs=2, seed=3)
    torch.manual_seed(3)
    expected = build_model(preset_config("seed-improved-vae"))
    recipe = RECIPES["seed-improved"].replace(epochs=2, batch_size=E.BATCH_SIZE, seed=3, rotation_degrees=0.0,
                                              plateau_scheduler=False)
    fit(expected, images, recipe, objective=BetaVAEObjective(IMPROVED_BETA), progress=False)
    assert torch.equal(weights(vae), weights(expected)) and seconds > 0


def test_pixel_side_is_trained_once_then_loaded(images, tmp_path):
    side = E.train_pixel_side(images, TINY, tmp_path, seed=1)
    assert side.message.startswith("trained") and [s.step for s in side.history.snapshots] == [1, 3]
    assert side.autoencoder is None and side.seconds(side.history.snapshots[0]) == side.history.snapshots[0].seconds
    again = E.train_pixel_side(images, TINY, tmp_path, seed=1)
    assert again.message.startswith("loaded pixel_") and torch.equal(weights(again.denoiser), weights(side.denoiser))
    assert [s.seconds for s in again.history.snapshots] == [s.seconds for s in side.history.snapshots]
    assert torch.equal(weights(side.denoiser), torch.cat([v.flatten().float() for v in
                                                          side.history.snapshots[-1].state.values()]))
    assert E.train_pixel_side(images, TINY, tmp_path, seed=2).message.startswith("trained")  # another seed
    assert E.train_pixel_side(images[:40], TINY, tmp_path, seed=1).message.startswith("trained")  # other data
    (tmp_path / again.message.removeprefix("loaded ")).write_bytes(b"garbage")
    assert E.train_pixel_side(images, TINY, tmp_path, seed=1).message.startswith("trained")


def test_latent_side_charges_its_autoencoder_and_is_cached(images, tmp_path):
    side = E.train_latent_side(images, TINY, tmp_path, "vae", seed=1)
    assert side.autoencoder_seconds > 0 and side.scaler.shift == 0.0
    first = side.history.snapshots[0]
    assert side.seconds(first) == pytest.approx(side.autoencoder_seconds + first.seconds)
    again = E.train_latent_side(images, TINY, tmp_path, "vae", seed=1)
    assert again.message.startswith("loaded latent-vae_")
    assert torch.equal(weights(again.autoencoder), weights(side.autoencoder))
    assert torch.equal(weights(again.denoiser), weights(side.denoiser))
    assert (again.scaler.scale, again.autoencoder_seconds) == (side.scaler.scale, side.autoencoder_seconds)
    ae = E.train_latent_side(images, TINY, tmp_path, "ae", seed=1)
    assert ae.message.startswith("trained") and ae.scaler.shift != 0.0  # an AE's codes are centred
    assert side.sample(NoiseSchedule(10), 4, 2).shape == (4, 1, 28, 28)


def test_a_spatial_latent_races_with_a_conv_denoiser_under_its_own_cache_key(images, tmp_path):
    config = ModelConfig("vae", 2 * 49, (4, 8), (8, 4), architecture="conv", spatial_latent=True)
    side = E.train_latent_side(images, TINY, tmp_path, config, seed=1)
    assert side.name == "spatial latent" and isinstance(side.denoiser, LatentConvNet)
    assert side.denoiser.latent_shape == (2, 7, 7) and side.autoencoder.config == config
    again = E.train_latent_side(images, TINY, tmp_path, config, seed=1)
    assert again.message.startswith("loaded spatial-latent-vae_") and torch.equal(weights(again.denoiser),
                                                                                 weights(side.denoiser))
    wider = ModelConfig("vae", 2 * 49, (4, 16), (8, 4), architecture="conv", spatial_latent=True)
    assert E.train_latent_side(images, TINY, tmp_path, wider, seed=1).message.startswith("trained")
    assert side.sample(NoiseSchedule(10), 3, 2).shape == (3, 1, 28, 28)
    assert E.autoencoder_config("ae") == preset_config("seed-improved-ae") and E.autoencoder_config(config) is config


def test_the_racers_start_from_their_seed():
    torch.manual_seed(0)
    unet = PixelUNet((16, 32, 64))
    assert torch.equal(weights(E.pixel_denoiser("cpu", seed=0)), weights(unet))
    assert not torch.equal(weights(E.pixel_denoiser("cpu", seed=1)), weights(unet))
    assert torch.equal(weights(E.pixel_denoiser("cpu")), weights(unet))  # seed 0 by default
    mlp = E.latent_denoiser(preset_config("seed-improved-vae"), "cpu", seed=0)
    assert torch.equal(weights(E.latent_denoiser(preset_config("seed-improved-vae"), "cpu")), weights(mlp))
    assert (mlp.latent_dim, mlp.inp.out_features, len(mlp.blocks)) == (16, 128, 3)
    conv = E.latent_denoiser(ModelConfig("ae", 196, (4, 8), (8, 4), architecture="conv", spatial_latent=True), "cpu")
    assert (conv.latent_shape, conv.stem.out_channels, len(conv.blocks)) == ((4, 7, 7), 32, 2)


class CountingJudge:
    """A stand-in judge whose FLD is the mean pixel value of the images it is shown."""

    def __init__(self):
        self.shown = []

    def fld(self, images):
        self.shown.append(images)
        return images.mean().item()


def test_quality_curve_judges_every_snapshot_and_leaves_the_final_weights(images, tmp_path):
    side = E.train_pixel_side(images, TINY, tmp_path)
    final = weights(side.denoiser)
    judge, lines = CountingJudge(), []
    points, images = E.quality_curve(side, NoiseSchedule(10), judge, n=5, steps=2, progress=lines.append)
    assert [p.step for p in points] == [1, 3] and len(judge.shown) == 2 and images == judge.shown
    assert [p.seconds for p in points] == [s.seconds for s in side.history.snapshots]
    assert [p.fld for p in points] == [x.mean().item() for x in judge.shown]
    assert not torch.equal(judge.shown[0], judge.shown[1])  # other weights, other images
    assert torch.equal(weights(side.denoiser), final) and len(lines) == 2 and "pixel: step 1" in lines[0]
    spread = E.fld_spread(side, NoiseSchedule(10), judge, 5, 2, seeds=(1, 2))
    assert len(spread) == 2 and spread[0] != spread[1]


def test_reference_flds_judge_real_reconstructed_and_prior_images(mnist5k):
    torch.manual_seed(0)
    judge = Judge(DigitClassifier().eval(), 0.0, mnist5k.test_images[::2], mnist5k.test_images[1::2], "")
    vae = build_model(preset_config("seed-baseline-vae")).eval()
    refs = E.reference_flds(judge, vae, n=20)
    assert set(refs) == {"floor", "reconstructions", "prior"} and refs["floor"] == pytest.approx(judge.floor())
    assert set(E.reference_flds(judge, build_model(preset_config("seed-baseline-ae")), n=20)) == {
        "floor", "reconstructions"}
    assert "the floor" in E.reference_table(refs, {"pixel": (3.0, 1.0, 2.0)})
    assert "2 (1-3)" in E.reference_table(refs, {"pixel": (3.0, 1.0, 2.0)})


def point(step, seconds, fld):
    return E.CurvePoint(step, seconds, fld)


def test_seconds_to_reach_and_the_tables():
    curve = [point(1, 2.0, 50.0), point(2, 4.0, 20.0), point(4, 8.0, 10.0)]
    assert E.seconds_to_reach(curve, 20.0) == 4.0 and E.seconds_to_reach(curve, 5.0) is None
    text = E.equal_steps_table(curve, [point(2, 1.0, 30.0), point(3, 1.5, 25.0)])
    assert len(text.splitlines()) == 3 and "30" in text  # only step 2 is shared
    rows = E.curve_table(curve, [point(2, 1.0, 30.0)]).splitlines()[2:]
    assert [r.split()[0] for r in rows] == ["latent", "pixel", "pixel", "pixel"]  # in order of seconds


def speed_row(pixel, latent):
    return E.SpeedRow(1, 10, Timing(pixel), Timing(latent), 100, 10)


def test_speed_rows_and_the_race_verdict():
    fast = speed_row((1.0, 1.1, 1.2), (0.1, 0.2, 0.3))
    overlapping = speed_row((1.0, 0.2, 1.2), (0.1, 0.25, 0.3))
    assert fast.speedup == pytest.approx(1.1 / 0.2) and fast.separated and not overlapping.separated
    assert "(ranges overlap)" in E.speed_table([overlapping]) and "10x" in E.speed_table([fast])
    pixel = [point(1, 10.0, 100.0), point(2, 20.0, 40.0), point(4, 40.0, 60.0)]  # best: 40 at 20 s
    latent = [point(1, 5.0, 80.0), point(2, 6.0, 45.0), point(4, 7.0, 39.0)]
    verdict = E.race_verdict(pixel, latent, [fast])
    assert (verdict.target_fld, verdict.pixel_seconds, verdict.latent_seconds) == (40.0, 20.0, 7.0)
    assert verdict.sooner and verdict.faster and verdict.text.count("[holds]") == 2
    assert E.race_verdict(pixel, latent, [fast], noise=5.0).latent_seconds == 6.0  # 45 is within 40 + 5
    slow = [point(1, 25.0, 30.0)]
    assert not E.race_verdict(pixel, slow, [fast]).sooner  # reached, but later than the pixel side
    never = E.race_verdict(pixel, [point(1, 1.0, 41.0)], [fast, overlapping])
    assert not never.sooner and not never.faster and "not at all" in never.text


def test_flops_per_sample_adds_one_decoding_on_the_latent_side(images, tmp_path):
    pixel = E.Side("pixel", PixelUNet((8, 8, 8)), None)
    assert E.flops_per_sample(pixel, 5) == 5 * flops_per_image(pixel.denoiser, (1, 28, 28))
    latent = E.train_latent_side(images, TINY, tmp_path)
    decode = count_flops(latent.autoencoder.decode, torch.zeros(1, 16))
    assert decode > 0 and E.flops_per_sample(latent, 5) == 5 * flops_per_image(latent.denoiser, (16,)) + decode


def test_sampling_speed_times_every_setting_with_its_repeats(images, tmp_path):
    pixel, latent = E.train_pixel_side(images, TINY, tmp_path), E.train_latent_side(images, TINY, tmp_path)
    rows = E.sampling_speed(pixel, latent, NoiseSchedule(10), batches=(1, 3), steps=(2,), repeats=3)
    assert [(r.batch, r.steps) for r in rows] == [(1, 2), (3, 2)]
    assert all(len(r.pixel.seconds) == len(r.latent.seconds) == 3 for r in rows)
    assert rows[0].pixel_flops == E.flops_per_sample(pixel, 2)


def test_run_measures_the_race_end_to_end(mnist5k, tmp_path, monkeypatch):
    torch.manual_seed(0)
    judge = Judge(DigitClassifier().eval(), 0.5, mnist5k.test_images[::2], mnist5k.test_images[1::2], "stand-in")
    asked = []
    monkeypatch.setattr(E, "load_judge", lambda data, folder: asked.append((data.name, folder)) or judge)
    lines = []
    race = E.run(settings=TINY, folder=tmp_path / "06_race", log=lines.append)
    assert asked == [("mnist-5k", tmp_path / "judges")]  # the judge of the race's data, kept beside the race
    assert all(len(row.pixel.seconds) == len(row.latent.seconds) == TINY.speed_repeats for row in race.speed)
    assert any(x.startswith("pixel U-Net: ") for x in lines) and any(x.startswith("VAE: ") for x in lines)
    assert race.judge_accuracy == 0.5 and [p.step for p in race.pixel] == [1, 3]
    assert [p.step for p in race.latent] == [1, 3, 6] and set(race.references) == {"floor", "reconstructions", "prior"}
    assert len(race.speed) == 1 and set(race.memorisation) == set(race.spreads) == {"pixel", "latent"}
    assert race.verdict.target_fld == min(p.fld for p in race.pixel)
    assert len(list((tmp_path / "06_race").glob("*.pt"))) == 2 and any("judge: test accuracy" in x for x in lines)


PIXEL = [E.CurvePoint(250, 34.3, 1260.0), E.CurvePoint(4000, 524.4, 401.2)]
LATENT = [E.CurvePoint(250, 10.31, 410.4), E.CurvePoint(4000, 16.8, 265.0), E.CurvePoint(32000, 80.4, 145.2)]


def test_curve_table_lists_every_snapshot_of_both_sides_by_training_seconds():
    assert E.curve_table(PIXEL, LATENT) == """\
side    optimizer steps  training s (AE incl.)       FLD
------  ---------------  ---------------------  --------
latent              250                   10.3       410
latent             4000                   16.8       265
pixel               250                   34.3  1.26e+03
latent            32000                   80.4       145
pixel              4000                    524       401"""


def test_equal_steps_table_pairs_the_sides_at_the_steps_they_share():
    assert E.equal_steps_table(PIXEL, LATENT) == """\
optimizer steps  pixel: s  pixel: FLD  latent: s (AE incl.)  latent: FLD
---------------  --------  ----------  --------------------  -----------
250                  34.3    1.26e+03                  10.3          410
4000                  524         401                  16.8          265"""


def test_speed_table_gives_medians_ranges_ratios_and_flags_overlapping_ranges():
    rows = [E.SpeedRow(1, 10, Timing((0.0112, 0.0110, 0.0120)), Timing((0.00186, 0.0019, 0.0018)), 12_000_000,
                       2_000_000),
            E.SpeedRow(32, 10, Timing((0.02, 0.03, 0.025)), Timing((0.025, 0.01, 0.012)), 1_000_000, 500_000),
            E.SpeedRow(500, 50, Timing((22.4, 17.3, 24.9)), Timing((0.055, 0.06, 0.05)), 600_000_000, 3_000_000)]
    cells = [re.split(r"\s{2,}", line.strip()) for line in E.speed_table(rows).splitlines()]
    assert cells[0] == ["images", "DDIM steps", "pixel s (range)", "latent s (range)", "pixel/latent time",
                        "pixel/latent FLOPs per image"]
    assert cells[2:] == [["1", "10", "0.0112 (0.011-0.012)", "0.00186 (0.0018-0.0019)", "6.0x", "6x"],
                         ["32", "10", "0.025 (0.02-0.03)", "0.012 (0.01-0.025)", "2.1x (ranges overlap)", "2x"],
                         ["500", "50", "22.4 (17.3-24.9)", "0.055 (0.05-0.06)", "407.3x", "200x"]]


def test_reference_table_names_each_reference_and_the_sampling_spread():
    text = E.reference_table({"floor": 14.76, "reconstructions": 65.7, "prior": 539.2},
                             {"pixel": (368.0, 399.0, 401.2)})
    assert text.splitlines()[2:] == [
        "real test digits (never seen by the judge): the floor                       14.8",
        "the autoencoder's reconstructions of them: latent diffusion's cap           65.7",
        "the VAE decoded from N(0, I) samples, no diffusion                           539",
        "pixel, final weights, 3 sampling seeds                             399 (368-401)",
    ]


def test_settings_check_the_latent_snapshots_too_and_allow_a_first_snapshot_at_step_one():
    with pytest.raises(ValueError, match=r"latent_snapshots must be increasing step counts >= 1, got \(3, 1\)"):
        E.RaceSettings((1,), (3, 1), 1, 1, 1, (1,), (1,))
    assert E.RaceSettings((1,), (1, 2), 1, 1, 1, (1,), (1,)).latent_snapshots == (1, 2)
