"""course_lib.diffusion: schedule, forward process, denoisers, samplers, training under a budget, latent scaling."""

import math

import pytest
import torch

from course_lib import diffusion as D
from course_lib.evaluate import decode
from course_lib.models import build_model, preset_config


@pytest.mark.parametrize("kind", D.SCHEDULES)
def test_schedule_alphas_cumprod_decreasing_in_unit_interval(kind):
    s = D.NoiseSchedule(1000, kind)
    abar = s.alphas_cumprod
    assert abar.shape == (1000,)
    assert ((abar > 0) & (abar < 1)).all()
    assert (abar[1:] < abar[:-1]).all()
    assert abar[-1] < 1e-3 and abar[0] > 0.99  # almost pure noise at t = T, almost clean at t = 1
    assert torch.allclose(s.alphas, 1 - s.betas)


def test_linear_schedule_matches_its_definition():
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    assert D.NoiseSchedule(1000).alphas_cumprod[499].item() == pytest.approx(math.prod(1 - b for b in betas[:500]))


def test_schedule_rejects_bad_input():
    with pytest.raises(ValueError, match="timesteps"):
        D.NoiseSchedule(0)
    with pytest.raises(ValueError, match="unknown schedule"):
        D.NoiseSchedule(10, "quadratic")
    with pytest.raises(ValueError, match="steps"):
        D.NoiseSchedule(10).sampling_timesteps(11)


def test_sampling_timesteps_descend_from_last_to_zero():
    ts = D.NoiseSchedule(1000).sampling_timesteps(10)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 10
    assert all(a > b for a, b in zip(ts, ts[1:]))


def test_q_sample_statistics():
    s = D.NoiseSchedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 4), 0.5)
    for t in (0, 300, 999):
        abar = s.alphas_cumprod[t].item()
        xt = s.q_sample(x0, torch.full((20000,), t), torch.randn(x0.shape, generator=g))
        assert xt.mean().item() == pytest.approx(math.sqrt(abar) * 0.5, abs=0.02)
        assert xt.var().item() == pytest.approx(1 - abar, abs=0.02 + 0.02 * (1 - abar))


def test_timestep_embedding_shape_and_range():
    e = D.timestep_embedding(torch.tensor([0, 1, 999]), 64)
    assert e.shape == (3, 64)
    assert e.abs().max() <= 1
    assert not torch.allclose(e[0], e[1])
    assert torch.equal(e[0], torch.cat([torch.zeros(32), torch.ones(32)]))  # sin(0) = 0, cos(0) = 1


def test_denoiser_shapes_and_time_dependence():
    torch.manual_seed(0)
    unet = D.PixelUNet()
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 500, 999])
    out = unet(x, t)
    assert out.shape == x.shape
    assert not torch.allclose(unet(x, torch.zeros(3, dtype=torch.long)), out)  # the time embedding matters
    mlp = D.LatentMLP(16, width=32, depth=2)
    z = torch.randn(5, 16)
    assert mlp(z, torch.arange(5)).shape == (5, 16)
    assert not torch.allclose(mlp(z, torch.zeros(5, dtype=torch.long)), mlp(z, torch.full((5,), 900)))
    with pytest.raises(ValueError, match="latent_dim"):
        D.LatentMLP(0)


def test_flops_counted_per_image():
    mlp = D.LatentMLP(16, width=32, depth=1, time_dim=8)
    # time MLP 8x8 twice, input 16x32, block: fc1, time 8x32, fc2, output 32x16; 2 FLOPs per multiply-add
    expected = 2 * (8 * 8 * 2 + 16 * 32 + 32 * 32 + 8 * 32 + 32 * 32 + 32 * 16)
    assert D.flops_per_image(mlp, (16,)) == expected
    assert D.flops_per_image(D.PixelUNet(), (1, 28, 28)) > 100 * expected


def test_ddim_eta0_deterministic_given_seed_and_ddpm_shape():
    torch.manual_seed(0)
    mlp = D.LatentMLP(4, width=16, depth=1)
    s = D.NoiseSchedule(20)
    a = D.ddim_sample(mlp, s, (6, 4), steps=5, eta=0.0, seed=3)
    b = D.ddim_sample(mlp, s, (6, 4), steps=5, eta=0.0, seed=3)
    c = D.ddim_sample(mlp, s, (6, 4), steps=5, eta=0.0, seed=4)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    noisy1 = D.ddim_sample(mlp, s, (6, 4), steps=5, eta=1.0, seed=3)
    assert not torch.allclose(a, noisy1)
    assert torch.equal(noisy1, D.ddim_sample(mlp, s, (6, 4), steps=5, eta=1.0, seed=3))
    assert D.ddpm_sample(mlp, s, (6, 4), seed=0).shape == (6, 4)
    clipped = D.ddim_sample(D.PixelUNet((8, 8, 8)), D.NoiseSchedule(20), (2, 1, 28, 28), steps=2, clip=1.0)
    assert clipped.shape == (2, 1, 28, 28) and clipped.abs().max() <= 1 + 1e-5
    with pytest.raises(ValueError, match="eta"):
        D.ddim_sample(mlp, s, (6, 4), steps=5, eta=-0.1)


class Oracle(torch.nn.Module):
    """The exact noise predictor for data that is one fixed point: eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)."""

    def __init__(self, schedule, target):
        super().__init__()
        self.abar, self.target = schedule.alphas_cumprod, target
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t):
        a = self.abar[t][:, None]
        return (x - a.sqrt() * self.target) / (1 - a).sqrt()


def test_perfect_denoiser_recovers_data_with_ddim_and_ddpm():
    s = D.NoiseSchedule(100)
    target = torch.tensor([[0.3, -0.7]])
    out = D.ddim_sample(Oracle(s, target), s, (4, 2), steps=5)
    assert torch.allclose(out, target.expand(4, 2), atol=1e-4)
    out = D.ddpm_sample(Oracle(s, target), s, (4, 2))
    assert torch.allclose(out, target.expand(4, 2), atol=1e-4)


def test_diffusion_loss_of_the_oracle_is_zero_and_of_zero_prediction_is_one():
    s = D.NoiseSchedule(100)
    target = torch.tensor([[0.3, -0.7]])
    x0 = target.expand(4000, 2)
    g = torch.Generator().manual_seed(0)
    assert D.diffusion_loss(Oracle(s, target), s, x0, g).item() == pytest.approx(0.0, abs=1e-8)
    zero = D.LatentMLP(2, width=4, depth=1)
    torch.nn.init.zeros_(zero.out[-1].weight)
    torch.nn.init.zeros_(zero.out[-1].bias)
    assert D.diffusion_loss(zero, s, x0, g).item() == pytest.approx(1.0, abs=0.05)  # E[eps^2] = 1


def test_loss_decreases_on_toy_problem():
    torch.manual_seed(0)
    data = torch.randn(512, 2) * 0.1 + torch.tensor([1.0, -1.0])
    mlp = D.LatentMLP(2, width=32, depth=1)
    s = D.NoiseSchedule(100)
    history = D.train_diffusion(mlp, s, data, budget_s=120, batch_size=128, lr=3e-3, max_steps=60, log_every=20)
    assert history.total_steps == 60 and history.steps == [20, 40, 60]
    assert history.loss_fell()
    assert history.losses[-1] < 0.7 * history.losses[0]


def test_training_stops_once_the_budget_is_spent():
    torch.manual_seed(0)
    mlp = D.LatentMLP(2, width=8, depth=1)
    history = D.train_diffusion(mlp, D.NoiseSchedule(10), torch.randn(64, 2), budget_s=0.3, batch_size=16)
    assert history.total_seconds >= 0.3 and history.seconds[-1] == history.total_seconds
    assert history.total_steps > 1 and history.epochs == pytest.approx(history.total_steps * 16 / 64)
    assert D.train_diffusion(mlp, D.NoiseSchedule(10), torch.randn(64, 2), budget_s=0, min_steps=5).total_steps == 5
    with pytest.raises(ValueError, match="budget_s"):
        D.train_diffusion(mlp, D.NoiseSchedule(10), torch.randn(64, 2), budget_s=-1)
    with pytest.raises(ValueError, match="at least one"):
        D.train_diffusion(mlp, D.NoiseSchedule(10), torch.randn(0, 2), budget_s=1)


def test_history_summary_states_time_per_step():
    history = D.DiffusionHistory([10, 20], [1.0, 2.0], [0.9, 0.3], total_steps=20, total_seconds=2.0, epochs=1.5)
    assert history.summary("net") == "net: 20 steps (1.5 epochs) in 2.0 s, 100 ms per step; loss 0.900 -> 0.300"


def test_pixel_range_round_trip():
    images = torch.rand(3, 1, 28, 28)
    x = D.to_model_range(images)
    assert x.min() >= -1 and x.max() <= 1 and torch.allclose(D.to_image_range(x), images)
    assert torch.equal(D.to_image_range(torch.tensor([-3.0, 0.0, 3.0])), torch.tensor([0.0, 0.5, 1.0]))


def test_latent_scaler_unit_std_and_round_trip():
    z = torch.randn(1000, 16) * 3.7 + 0.4
    scaler = D.LatentScaler().fit(z)
    assert scaler.encode(z).std().item() == pytest.approx(1.0, abs=1e-5)
    assert scaler.scale == pytest.approx(1 / 3.7, rel=0.02)
    assert torch.allclose(scaler.decode(scaler.encode(z)), z, atol=1e-5)
    centred = D.LatentScaler().fit(z, center=True)
    assert centred.encode(z).mean().item() == pytest.approx(0.0, abs=1e-5)
    assert torch.allclose(centred.decode(centred.encode(z)), z, atol=1e-5)
    with pytest.raises(ValueError):
        D.LatentScaler().fit(torch.zeros(10, 3))


def test_sampled_images_lie_in_image_range():
    torch.manual_seed(0)
    vae = build_model(preset_config("seed-baseline-vae"))
    mlp = D.LatentMLP(3, width=16, depth=1)
    schedule = D.NoiseSchedule(20)
    images = D.sample_latent_images(mlp, schedule, vae, D.LatentScaler(2.0), n=5, steps=4)
    assert images.shape == (5, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    z = D.ddim_sample(mlp, schedule, (5, 3), steps=4) / 2.0  # the scaler's decode by hand
    assert torch.allclose(images, decode(vae, z))
    pixels = D.sample_pixel_images(D.PixelUNet((8, 8, 8)), schedule, n=2, steps=2)
    assert pixels.shape == (2, 1, 28, 28) and 0 <= pixels.min() and pixels.max() <= 1
