"""course_lib.diffusion: schedule, forward process, denoisers, samplers, training under a budget, latent scaling."""

import math
import time

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
    history = D.train_diffusion(mlp, s, data, steps=60, batch_size=128, lr=3e-3, log_every=20)
    assert history.total_steps == 60 and history.steps == [20, 40, 60]
    assert history.loss_fell()
    assert history.losses[-1] < 0.7 * history.losses[0]


def test_training_takes_its_steps_and_snapshots_the_weights_on_the_way():
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    mlp = D.LatentMLP(2, width=8, depth=1)
    history = D.train_diffusion(mlp, D.NoiseSchedule(10), data, steps=9, batch_size=16, snapshot_steps=(2, 5, 9))
    assert history.total_steps == 9 and history.steps == [9] and history.epochs == pytest.approx(9 * 16 / 64)
    assert [s.step for s in history.snapshots] == [2, 5, 9]
    seconds = [s.seconds for s in history.snapshots]
    assert 0 < seconds[0] < seconds[1] < seconds[2] <= history.total_seconds
    final = history.snapshots[-1].state
    assert all(torch.equal(final[k], v) for k, v in mlp.state_dict().items())  # the last snapshot is the model
    assert all(v is not mlp.state_dict()[k] for k, v in final.items())  # copies, not the live tensors
    # a snapshot holds the weights a shorter run of the same seed ends with
    torch.manual_seed(0)
    short = D.LatentMLP(2, width=8, depth=1)
    D.train_diffusion(short, D.NoiseSchedule(10), data, steps=5, batch_size=16)
    assert all(torch.equal(history.snapshots[1].state[k], v) for k, v in short.state_dict().items())
    assert not all(torch.equal(history.snapshots[0].state[k], v) for k, v in short.state_dict().items())
    for bad in ((0,), (10,)):
        with pytest.raises(ValueError, match=r"snapshot steps must lie in \[1, 9\]"):
            D.train_diffusion(mlp, D.NoiseSchedule(10), data, steps=9, snapshot_steps=bad)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        D.train_diffusion(mlp, D.NoiseSchedule(10), data, steps=0)
    with pytest.raises(ValueError, match="at least one"):
        D.train_diffusion(mlp, D.NoiseSchedule(10), torch.randn(0, 2), steps=1)


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


class GaussianOracle(torch.nn.Module):
    """The optimal noise predictor for data x_0 ~ N(mean, std^2 I): with x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps,
    E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) mean) / (abar std^2 + 1 - abar) (Gaussian conditioning)."""

    def __init__(self, schedule, mean, std):
        super().__init__()
        self.abar, self.mean, self.var = schedule.alphas_cumprod.double(), mean.double(), std**2
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t):
        assert (t == t[0]).all()  # the samplers denoise a batch at one timestep
        a = self.abar[t[0]].item()
        return (math.sqrt(1 - a) * (x.double() - math.sqrt(a) * self.mean) / (a * self.var + 1 - a)).to(x.dtype)


GAUSSIAN_MEAN, GAUSSIAN_STD = torch.tensor([1.0, -2.0]), 0.5


@pytest.fixture(scope="module")
def gaussian_oracle():
    schedule = D.NoiseSchedule(1000)
    return schedule, GaussianOracle(schedule, GAUSSIAN_MEAN, GAUSSIAN_STD)


def test_ddpm_with_the_optimal_denoiser_samples_the_data_distribution(gaussian_oracle):
    """Point-mass data hides a wrong variance (every path ends at x_0); Gaussian data does not."""
    schedule, oracle = gaussian_oracle
    x = D.ddpm_sample(oracle, schedule, (10_000, 2), seed=0)
    assert torch.allclose(x.mean(0), GAUSSIAN_MEAN, atol=0.02)
    assert torch.allclose(x.std(0), torch.full((2,), GAUSSIAN_STD), rtol=0.03)


def test_ddim_with_the_optimal_denoiser_samples_the_data_distribution(gaussian_oracle):
    schedule, oracle = gaussian_oracle
    for steps, eta, rtol in ((1000, 0.0, 0.01), (100, 0.0, 0.04), (250, 1.0, 0.05)):
        x = D.ddim_sample(oracle, schedule, (10_000, 2), steps=steps, eta=eta, seed=0)
        assert torch.allclose(x.mean(0), GAUSSIAN_MEAN, atol=0.02), (steps, eta)
        assert torch.allclose(x.std(0), torch.full((2,), GAUSSIAN_STD), rtol=rtol), (steps, eta)


def test_ddim_with_eta_1_on_every_timestep_is_ddpm(gaussian_oracle):
    """Song et al. (2021): eta = 1 on all T steps gives DDPM's ancestral sampler, draw for draw."""
    schedule, oracle = gaussian_oracle
    ddpm = D.ddpm_sample(oracle, schedule, (500, 2), seed=4)
    ddim = D.ddim_sample(oracle, schedule, (500, 2), steps=1000, eta=1.0, seed=4)
    assert torch.allclose(ddim, ddpm, atol=1e-4)


def test_cosine_schedule_is_nichol_and_dhariwals_alpha_bar():
    """alpha-bar(t) = f(t) / f(0) with f(t) = cos^2((t / T + s) / (1 + s) pi / 2), s = 0.008 (their eq. 17)."""
    T, s = 100, 0.008
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    schedule = D.NoiseSchedule(T, "cosine")
    expected = torch.tensor([f[t + 1] / f[0] for t in range(T)])
    assert torch.allclose(schedule.alphas_cumprod[:-1], expected[:-1].float(), rtol=1e-5, atol=1e-7)
    assert schedule.betas.max().item() == pytest.approx(0.999)  # the last beta is clipped (f(T) = 0)
    assert repr(schedule) == "NoiseSchedule(timesteps=100, kind='cosine')"


def test_linear_schedule_runs_from_beta_start_to_beta_end_and_checks_them():
    schedule = D.NoiseSchedule(5, beta_start=0.01, beta_end=0.05)
    assert schedule.betas.tolist() == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    assert schedule.alphas_cumprod.tolist() == pytest.approx([math.prod(1 - b / 100 for b in range(1, k + 1))
                                                              for k in range(1, 6)])
    assert D.NoiseSchedule(1, beta_start=0.3, beta_end=0.3).alphas_cumprod.tolist() == pytest.approx([0.7])
    for start, end in ((0.0, 0.02), (0.03, 0.02), (1e-4, 1.0)):
        with pytest.raises(ValueError, match="need 0 < beta_start <= beta_end < 1"):
            D.NoiseSchedule(10, beta_start=start, beta_end=end)
    with pytest.raises(ValueError, match="timesteps must be an integer >= 1, got 10.0"):
        D.NoiseSchedule(10.0)
    with pytest.raises(ValueError, match="choose one of linear, cosine"):
        D.NoiseSchedule(10, "sigmoid")


def test_schedule_moves_to_a_device():
    schedule = D.NoiseSchedule(10)
    assert schedule.to("meta") is schedule
    assert {t.device.type for t in (schedule.betas, schedule.alphas, schedule.alphas_cumprod)} == {"meta"}
    on_meta = D.NoiseSchedule(10, device="meta")
    assert {t.device.type for t in (on_meta.betas, on_meta.alphas, on_meta.alphas_cumprod)} == {"meta"}


def test_q_sample_mixes_each_item_at_its_own_timestep():
    schedule = D.NoiseSchedule(10)
    x0, noise = torch.rand(3, 1, 28, 28), torch.randn(3, 1, 28, 28)
    t = torch.tensor([0, 4, 9])
    xt = schedule.q_sample(x0, t, noise)
    for i in range(3):
        a = schedule.alphas_cumprod[t[i]]
        assert torch.allclose(xt[i], a.sqrt() * x0[i] + (1 - a).sqrt() * noise[i])


def test_sampling_timesteps_for_one_step_and_for_every_step():
    schedule = D.NoiseSchedule(10)
    assert schedule.sampling_timesteps(1) == [9]
    assert schedule.sampling_timesteps(10) == list(range(9, -1, -1))
    assert schedule.sampling_timesteps(4) == [9, 6, 3, 0]
    for steps in (0, 2.0):
        with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 10\]"):
            schedule.sampling_timesteps(steps)


def test_timestep_embedding_is_the_transformer_sinusoid():
    """emb[i] = sin(t / 10000^(i / half)), emb[half + i] = cos(t / 10000^(i / half)), i < half = dim / 2."""
    t = torch.tensor([0, 3, 250])
    e = D.timestep_embedding(t, 8)
    for row, step in enumerate((0, 3, 250)):
        expected = [math.sin(step / 10_000 ** (i / 4)) for i in range(4)] + [
            math.cos(step / 10_000 ** (i / 4)) for i in range(4)]
        assert e[row].tolist() == pytest.approx(expected, abs=1e-5)
    assert D.timestep_embedding(torch.tensor([7]), 4, max_period=100.0)[0, 1].item() == pytest.approx(
        math.sin(7 / 100 ** 0.5), abs=1e-6)


def test_blocks_are_the_documented_residual_blocks():
    """MLPBlock: h + fc2(SiLU(fc1(SiLU(LayerNorm(h))) + time(SiLU(temb)))); ResBlock likewise with GroupNorm and
    3x3 convolutions, and a 1x1 convolution on the skip path when the width changes."""
    from course_lib.diffusion.denoisers import MLPBlock, ResBlock

    torch.manual_seed(0)
    silu = torch.nn.functional.silu
    block, h, temb = MLPBlock(6, 4), torch.randn(3, 6), torch.randn(3, 4)
    y = block.fc1(silu(torch.nn.functional.layer_norm(h, (6,), block.norm.weight, block.norm.bias)))
    expected = h + block.fc2(silu(y + block.time(silu(temb))))
    assert torch.allclose(block(h, temb), expected, atol=1e-6)
    res, x = ResBlock(4, 8, 4, groups=4), torch.randn(2, 4, 5, 5)
    norm1 = torch.nn.functional.group_norm(x, 4, res.norm1.weight, res.norm1.bias)
    hidden = res.conv1(silu(norm1)) + res.time(silu(temb[:2]))[:, :, None, None]
    hidden = res.conv2(silu(torch.nn.functional.group_norm(hidden, 4, res.norm2.weight, res.norm2.bias)))
    assert torch.allclose(res(x, temb[:2]), hidden + res.skip(x), atol=1e-5)
    assert isinstance(res.skip, torch.nn.Conv2d) and res.skip.kernel_size == (1, 1)
    assert isinstance(ResBlock(8, 8, 4).skip, torch.nn.Identity)
    assert ResBlock(12, 6, 4, groups=8).norm1.num_groups == 4  # gcd(8, 12): groups that divide the channels


def test_pixel_unet_flops_by_hand():
    """2 FLOPs per multiply-add: a k x k convolution costs 2 c_in c_out k^2 per output pixel."""

    def conv(c_in, c_out, size, k=3):
        return 2 * c_in * c_out * k * k * size * size

    def res(c_in, c_out, size):
        return conv(c_in, c_out, size) + 2 * 64 * c_out + conv(c_out, c_out, size) + (
            conv(c_in, c_out, size, k=1) if c_in != c_out else 0)

    c0, c1, c2 = 16, 32, 64
    expected = (2 * 2 * 64 * 64  # the time MLP
                + conv(1, c0, 28) + res(c0, c0, 28) + conv(c0, c0, 14) + res(c0, c1, 14) + conv(c1, c1, 7)
                + res(c1, c2, 7) + res(c2 + c1, c1, 14) + res(c1 + c0, c0, 28) + conv(c0, 1, 28))
    unet = D.PixelUNet((c0, c1, c2))
    assert D.flops_per_image(unet, (1, 28, 28)) == expected
    assert unet.channels == (16, 32, 64) and unet.out[0].num_groups == 8


def test_latent_mlp_is_its_blocks_in_sequence():
    torch.manual_seed(0)
    mlp = D.LatentMLP(3, width=8, depth=2, time_dim=4)
    z, t = torch.randn(5, 3), torch.arange(5)
    temb = mlp.time_embedding.mlp(D.timestep_embedding(t, 4))
    h = mlp.inp(z)
    for block in mlp.blocks:
        h = block(h, temb)
    assert torch.allclose(mlp(z, t), mlp.out(h), atol=1e-6)
    assert len(mlp.blocks) == 2 and mlp.latent_dim == 3 and mlp.out[-1].out_features == 3
    for kwargs in ({"width": 0}, {"depth": 0}):
        with pytest.raises(ValueError, match="latent_dim, width and depth must be >= 1"):
            D.LatentMLP(3, **kwargs)


class Spy(torch.nn.Module):
    """Predicts zero noise and records what it was asked."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, x, t):
        self.calls.append((x.detach().clone(), t.clone()))
        return x * 0 + self.p


def test_diffusion_loss_draws_timesteps_uniformly_and_noises_x0_at_them():
    schedule, spy = D.NoiseSchedule(50), Spy()
    x0 = torch.full((20_000, 1), 0.8)
    loss = D.diffusion_loss(spy, schedule, x0, torch.Generator().manual_seed(0))
    (xt, t), = spy.calls
    assert t.min() == 0 and t.max() == 49 and t.float().mean().item() == pytest.approx(24.5, abs=0.3)
    abar = schedule.alphas_cumprod[t][:, None]
    noise = (xt - abar.sqrt() * x0) / (1 - abar).sqrt()  # the noise that was added, recovered
    assert noise.mean().item() == pytest.approx(0.0, abs=0.03) and noise.std().item() == pytest.approx(1.0, rel=0.02)
    assert loss.item() == pytest.approx(noise.pow(2).mean().item(), rel=1e-4)  # |eps - 0|^2


def test_train_diffusion_logs_running_means_and_counts_epochs(monkeypatch):
    torch.manual_seed(0)
    data = torch.randn(40, 2)
    spy_losses = []
    model = D.LatentMLP(2, width=8, depth=1)
    real_loss = D.training.diffusion_loss

    def recording_loss(*args):
        loss = real_loss(*args)
        spy_losses.append(loss.item())
        return loss

    monkeypatch.setattr(D.training, "diffusion_loss", recording_loss)
    history = D.train_diffusion(model, D.NoiseSchedule(10), data, steps=7, batch_size=16, log_every=3, grad_clip=None)
    assert history.steps == [3, 6, 7] and history.total_steps == 7 and len(spy_losses) == 7
    assert history.losses == pytest.approx([sum(spy_losses[:3]) / 3, sum(spy_losses[3:6]) / 3, spy_losses[6]])
    assert history.epochs == pytest.approx(7 * 16 / 40)
    assert history.seconds[-1] <= history.total_seconds and sorted(history.seconds) == history.seconds
    assert not model.training


def test_train_diffusion_is_seeded_and_refuses_data_elsewhere():
    def run(seed):
        torch.manual_seed(0)
        model = D.LatentMLP(2, width=8, depth=1)
        D.train_diffusion(model, D.NoiseSchedule(10), torch.ones(32, 2), steps=5, batch_size=8, seed=seed)
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))
    with pytest.raises(ValueError, match="data is on meta but the model on cpu"):
        D.train_diffusion(D.LatentMLP(2), D.NoiseSchedule(10), torch.ones(4, 2, device="meta"), steps=1)


def test_history_loss_fell_needs_two_logs():
    assert D.DiffusionHistory(losses=[1.0, 0.5]).loss_fell()
    assert not D.DiffusionHistory(losses=[1.0, 1.0]).loss_fell()
    assert not D.DiffusionHistory(losses=[0.5]).loss_fell()


def test_latent_scaler_fit_checks_its_input():
    for bad in (torch.randn(10), torch.randn(1, 4), torch.randn(2, 3, 4)):
        with pytest.raises(ValueError, match="latents must be a .N >= 2, latent_dim. tensor"):
            D.LatentScaler().fit(bad)
    with pytest.raises(ValueError, match="zero spread"):
        D.LatentScaler().fit(torch.ones(5, 2))
    z = torch.tensor([[0.0, 2.0], [4.0, 6.0]])  # mean 3, std over all four values sqrt(20 / 3)
    scaler = D.LatentScaler().fit(z, center=True)
    assert scaler.shift == 3.0 and scaler.scale == pytest.approx(math.sqrt(3 / 20))
    assert repr(scaler) == f"LatentScaler(scale={math.sqrt(3 / 20):.4g}, shift=3)"
    assert D.LatentScaler(2, 1).decode(torch.tensor([4.0])).item() == 3.0  # z = scaled / scale + shift
    assert D.LatentScaler(2, 1).encode(torch.tensor([3.0])).item() == 4.0


def test_image_samplers_are_ddim_in_each_space():
    torch.manual_seed(0)
    schedule, unet = D.NoiseSchedule(20), D.PixelUNet((8, 8, 8))
    pixels = D.sample_pixel_images(unet, schedule, n=2, steps=3, seed=5, eta=0.5)
    by_hand = D.ddim_sample(unet, schedule, (2, 1, 28, 28), steps=3, eta=0.5, seed=5, clip=1.0)
    assert torch.allclose(pixels, (by_hand.clamp(-1, 1) + 1) / 2)
    vae = build_model(preset_config("seed-baseline-vae"))
    mlp = D.LatentMLP(3, width=16, depth=1)
    scaler = D.LatentScaler(0.5, 0.25)
    images = D.sample_latent_images(mlp, schedule, vae, scaler, n=4, steps=3, seed=2, eta=0.5)
    z = D.ddim_sample(mlp, schedule, (4, 3), steps=3, eta=0.5, seed=2) / 0.5 + 0.25
    assert torch.allclose(images, decode(vae, z))


def test_loss_fell_compares_the_last_log_with_the_first():
    assert not D.DiffusionHistory(losses=[1.0, 0.5, 1.2]).loss_fell()
    assert D.DiffusionHistory(losses=[1.0, 1.5, 0.9]).loss_fell()


def test_ddpm_clips_the_predicted_x0(gaussian_oracle):
    """Data around (1, -2) with std 0.5: clipping x_0 to [-1, 1] piles the second coordinate up at -1 and cuts
    the first at 1."""
    schedule, oracle = gaussian_oracle
    x = D.ddpm_sample(oracle, schedule, (2000, 2), seed=1, clip=1.0)
    assert x.min() >= -1 - 1e-6 and x.max() <= 1 + 1e-6
    assert (x[:, 1] <= -1 + 1e-6).float().mean() > 0.1 and (x[:, 0] >= 1 - 1e-6).float().mean() > 0.1
    assert x[:, 0].std() > 0.1  # the lower part of the first coordinate still varies
    assert torch.equal(D.ddpm_sample(oracle, schedule, (5, 2)), D.ddpm_sample(oracle, schedule, (5, 2), seed=0))


def test_history_summary_rounds_milliseconds_to_three_digits():
    history = D.DiffusionHistory([1], [0.0999], [0.5], total_steps=1, total_seconds=0.0999, epochs=0.25)
    assert "99.9 ms per step" in history.summary("x")


def test_train_diffusion_defaults_and_batches_follow_the_seed(monkeypatch):
    def run(**kwargs):
        torch.manual_seed(0)
        model = D.LatentMLP(2, width=8, depth=1)
        D.train_diffusion(model, D.NoiseSchedule(10), torch.randn(300, 2, generator=torch.Generator().manual_seed(0)),
                          steps=3, **kwargs)
        return torch.cat([p.flatten() for p in model.parameters()])

    explicit = dict(batch_size=128, lr=1e-3, seed=0, log_every=10, grad_clip=1.0, snapshot_steps=())
    assert torch.equal(run(), run(**explicit))  # the documented defaults
    seen = []
    real_loss = D.training.diffusion_loss
    monkeypatch.setattr(D.training, "diffusion_loss", lambda model, schedule, x0, g: seen.append(x0) or real_loss(
        model, schedule, x0, g))
    run(seed=1)
    run(seed=2)
    assert not torch.equal(seen[0], seen[3])  # another seed, other batches
    with pytest.raises(ValueError, match="^train_diffusion needs at least one training item, got 0$"):
        D.train_diffusion(D.LatentMLP(2), D.NoiseSchedule(10), torch.randn(0, 2), steps=1)


def test_latent_scaler_defaults_change_nothing():
    z = torch.randn(10, 3)
    assert torch.equal(D.LatentScaler().encode(z), z) and torch.equal(D.LatentScaler().decode(z), z)
    assert D.LatentScaler().fit(z + 5).shift == 0.0  # no centring unless asked
    with pytest.raises(ValueError, match="^latents have zero spread; cannot scale them$"):
        D.LatentScaler().fit(torch.ones(4, 2))


def test_pixel_unet_output_block_and_group_counts():
    unet = D.PixelUNet((12, 24, 48))
    assert [type(m) for m in unet.out] == [torch.nn.GroupNorm, torch.nn.SiLU, torch.nn.Conv2d]
    assert unet.out[0].num_groups == 4  # gcd(8, 12): 8 groups do not divide 12 channels
    from course_lib.diffusion.denoisers import ResBlock

    assert ResBlock(16, 16, 4).norm1.num_groups == 8
    assert unet(torch.zeros(2, 1, 28, 28), torch.zeros(2).long()).shape == (2, 1, 28, 28)


def test_sample_pixel_images_defaults():
    torch.manual_seed(0)
    unet, schedule = D.PixelUNet((8, 8, 8)), D.NoiseSchedule(20)
    assert torch.equal(D.sample_pixel_images(unet, schedule, 2, 2), D.sample_pixel_images(unet, schedule, 2, 2, seed=0,
                                                                                           eta=0.0))


def test_latent_conv_net_denoises_flattened_spatial_latents_and_sees_the_whole_map():
    torch.manual_seed(0)
    net = D.LatentConvNet((3, 7, 7), width=16, depth=2)
    z, t = torch.randn(4, 147), torch.tensor([0, 10, 100, 999])
    out = net(z, t)
    assert out.shape == z.shape and net.latent_dim == 147
    assert not torch.allclose(net(z, torch.full((4,), 500)), out)  # the noise level matters
    moved = z.reshape(4, 3, 7, 7).clone()
    moved[:, :, 0, 0] += 1.0
    reach = (net(moved.flatten(1), t) - out).abs().reshape(4, 3, 7, 7)
    assert (reach[:, :, 6, 6] > 0).all()  # 6 convolutions of 3 x 3 span the 7 x 7 map, corner to corner
    for bad in ((147,), (3, 7), (0, 7, 7)):
        with pytest.raises(ValueError, match="latent_shape must be"):
            D.LatentConvNet(bad)
    for width, depth in ((0, 2), (16, 0)):
        with pytest.raises(ValueError, match="width, depth >= 1"):
            D.LatentConvNet((3, 7, 7), width=width, depth=depth)
    smallest = D.LatentConvNet((1, 1, 1), width=1, depth=1)  # every size 1 is allowed
    assert smallest(torch.randn(2, 1), torch.tensor([0, 1])).shape == (2, 1)
    default = D.LatentConvNet((2, 7, 7))
    assert (default.stem.out_channels, len(default.blocks)) == (64, 2)
    assert isinstance(net.out[0], torch.nn.GroupNorm) and net.out[0].num_groups == 8  # gcd(8, 16)


def test_denoiser_heads_normalise_and_activate_before_their_last_layer():
    mlp = D.LatentMLP(4, width=16, depth=1)
    assert [type(m) for m in mlp.out] == [torch.nn.LayerNorm, torch.nn.SiLU, torch.nn.Linear]
    conv = D.LatentConvNet((2, 7, 7), width=12, depth=1)
    assert [type(m) for m in conv.out] == [torch.nn.GroupNorm, torch.nn.SiLU, torch.nn.Conv2d]
    time_mlp = D.denoisers.TimeEmbedding(8).mlp  # without its SiLU, two linear layers would collapse into one
    assert [type(m) for m in time_mlp] == [torch.nn.Linear, torch.nn.SiLU, torch.nn.Linear]
    smallest = D.LatentMLP(1, width=1, depth=1)  # every size 1 is allowed
    assert smallest(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)).shape == (2, 1)


def test_diffusion_loss_draws_timesteps_and_noise_from_its_generator_alone():
    schedule, model = D.NoiseSchedule(50), D.LatentMLP(3, width=8, depth=1)
    x0 = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    losses = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)  # the global generator plays no part
        losses.append(D.diffusion_loss(model, schedule, x0, torch.Generator().manual_seed(5)).item())
    assert losses[0] == losses[1]


def test_train_diffusion_uses_its_learning_rate_and_times_only_training():
    torch.manual_seed(0)
    model = D.LatentMLP(2, width=8, depth=1)
    before = [p.detach().clone() for p in model.parameters()]
    wall = time.perf_counter()
    history = D.train_diffusion(model, D.NoiseSchedule(10), torch.randn(64, 2), steps=4, batch_size=16, lr=0.0,
                                snapshot_steps=(2,))
    wall = time.perf_counter() - wall
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # Adam at lr 0 moves nothing
    assert 0 < history.snapshots[0].seconds <= history.total_seconds <= wall
