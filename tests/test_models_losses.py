import pytest
import torch

from course_lib import losses
from course_lib.baselines import PCA, pca_test_mse
from course_lib.metrics import psnr_db
from course_lib.models import ModelConfig, build_model, count_parameters, preset


@pytest.mark.parametrize(
    "name, expected",
    [
        ("seed-baseline-ae", 219_891),
        ("seed-baseline-vae", 218_838),
        ("seed-improved-ae", 488_864),
        ("seed-improved-vae", 476_208),
    ],
)
def test_presets_match_the_article_parameter_counts(name, expected):
    assert count_parameters(preset(name)) == expected


def test_vae_interface_shapes():
    vae = preset("seed-improved-vae").eval()
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (5, 16)
    z = vae.reparameterize(mu, logvar)
    assert vae.decode(z).shape == (5, 1, 28, 28)
    x_hat, mu2, _ = vae(x)
    assert x_hat.shape == (5, 1, 28, 28) and torch.equal(mu, mu2)
    assert 0 <= x_hat.min() and x_hat.max() <= 1


def test_reparameterization_passes_gradients_to_mu_and_sigma():
    mu = torch.zeros(3, requires_grad=True)
    logvar = torch.zeros(3, requires_grad=True)
    z = build_model(ModelConfig("vae", 3)).reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    z.sum().backward()
    assert torch.equal(mu.grad, torch.ones(3)) and logvar.grad.abs().sum() > 0


def test_reparameterized_samples_have_the_intended_mean_and_spread():
    mu = torch.tensor([[1.0, -2.0, 0.0]]).expand(200_000, 3)
    logvar = torch.log(torch.tensor([[0.25, 1.0, 4.0]])).expand(200_000, 3)
    z = build_model(ModelConfig("vae", 3)).reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0, 0.0]), atol=0.02)
    assert torch.allclose(z.std(0), torch.tensor([0.5, 1.0, 2.0]), rtol=0.01)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "ae", "latent_dim": 0}, "latent_dim"),
        ({"kind": "vae", "latent_dim": -3}, "latent_dim"),
        ({"kind": "ae", "latent_dim": 2, "activation": "tanhh"}, "unknown activation"),
        ({"kind": "gan", "latent_dim": 2}, "unknown model kind"),
        ({"kind": "ae", "latent_dim": 2, "encoder_widths": (0,)}, "widths"),
    ],
)
def test_invalid_model_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        preset("seed-huge-vae")


def test_kl_closed_form_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 6, generator=gen)
    logvar = torch.randn(4, 6, generator=gen) * 0.5
    closed = losses.kl_per_image(mu, logvar)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(0.0, 1.0)
    z = q.sample((200_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(closed, monte_carlo, rtol=0.02, atol=0.02)
    assert torch.allclose(closed, torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-5)


def test_losses_are_per_image_in_stated_units():
    x = torch.rand(3, 1, 28, 28)
    assert losses.mse_per_pixel(x, x).tolist() == [0, 0, 0]
    half = torch.full_like(x, 0.5)
    assert torch.allclose(losses.mse_per_pixel(half, torch.zeros_like(x)), torch.full((3,), 0.25))
    # a decoder that says 0.5 everywhere costs log 2 nats per pixel whatever the image
    assert torch.allclose(losses.bce_per_image(half, x), torch.full((3,), 784 * torch.log(torch.tensor(2.0))))
    zeros = torch.zeros(3, 4)
    assert losses.kl_per_image(zeros, zeros).tolist() == [0, 0, 0]
    assert torch.allclose(psnr_db(torch.tensor([0.01])), torch.tensor([20.0]))


def test_bce_is_the_bernoulli_negative_log_likelihood():
    p = torch.tensor([[0.9, 0.2, 0.5]])
    x = torch.tensor([[1.0, 0.0, 0.25]])
    by_hand = -(torch.log(torch.tensor(0.9)) + torch.log(torch.tensor(0.8)) + torch.log(torch.tensor(0.5)))
    assert torch.allclose(losses.bce_per_image(p, x), by_hand.reshape(1))
    # saturated probabilities cost at most 100 nats per pixel instead of infinity
    assert losses.bce_per_image(torch.tensor([[0.0]]), torch.tensor([[1.0]])).item() == pytest.approx(100.0)


def test_negative_beta_is_refused():
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="beta"):
        losses.beta_vae_loss(x, x, torch.zeros(2, 3), torch.zeros(2, 3), beta=-0.5)


def test_pca_reconstructs_exactly_with_all_components(mnist5k):
    train = mnist5k.train_images[::10]
    pca = PCA(400).fit(train)
    assert torch.allclose(pca.reconstruct(train), train, atol=1e-4)
    assert pca_test_mse(mnist5k.train_images, mnist5k.test_images, 16) < pca_test_mse(
        mnist5k.train_images, mnist5k.test_images, 3
    )
