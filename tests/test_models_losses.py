import math

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


@pytest.mark.parametrize(
    "name, activation, batch_norm",
    [
        ("seed-baseline-ae", torch.nn.ReLU, False),
        ("seed-baseline-vae", torch.nn.ReLU, False),
        ("seed-improved-ae", torch.nn.LeakyReLU, True),
        ("seed-improved-vae", torch.nn.LeakyReLU, True),
    ],
)
def test_presets_build_the_article_layers(name, activation, batch_norm):
    """The article's layer sequence: Linear, (BatchNorm1d,) activation per hidden layer; the VAE's two heads;
    a sigmoid at the end of the decoder."""
    model = preset(name)
    hidden = len(model.config.encoder_widths)
    encoder_kinds = [type(m) for m in model.encoder]
    per_layer = [torch.nn.Linear, *([torch.nn.BatchNorm1d] if batch_norm else []), activation]
    ends_in_code = [torch.nn.Linear] if model.config.kind == "ae" else []
    assert encoder_kinds == per_layer * hidden + ends_in_code
    assert [type(m) for m in model.decoder] == per_layer * len(model.config.decoder_widths) + [
        torch.nn.Linear, torch.nn.Sigmoid]
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert (linears[0].in_features, linears[-1].out_features) == (model.config.latent_dim, 784)


@pytest.mark.parametrize("name, module", [("relu", torch.nn.ReLU), ("leaky_relu", torch.nn.LeakyReLU),
                                          ("gelu", torch.nn.GELU), ("silu", torch.nn.SiLU)])
def test_each_activation_name_builds_that_activation(name, module):
    for kind in ("ae", "vae"):
        model = build_model(ModelConfig(kind, 2, (8,), (8,), activation=name))
        activations = [m for m in model.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.GELU,
                                                                    torch.nn.SiLU))]
        assert [type(m) for m in activations] == [module, module]


def test_model_config_normalises_and_round_trips_plain_data():
    config = ModelConfig("vae", 3, [32, 16], [16, 32], "gelu", True)
    assert config.encoder_widths == (32, 16) and config.decoder_widths == (16, 32) and hash(config)
    plain = config.to_dict()
    assert plain == {"kind": "vae", "latent_dim": 3, "encoder_widths": [32, 16], "decoder_widths": [16, 32],
                     "activation": "gelu", "batch_norm": True, "architecture": "mlp", "spatial_latent": False}
    assert ModelConfig.from_dict(plain) == config and plain["encoder_widths"] == [32, 16]  # input left alone
    older = {k: v for k, v in plain.items() if k not in ("architecture", "spatial_latent")}  # saved before conv
    assert ModelConfig.from_dict(older) == config
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 1, got 2.0"):
        ModelConfig("ae", 2.0)
    with pytest.raises(ValueError, match=r"layer widths must be integers >= 1, got \(8, 4.5\)"):
        ModelConfig("ae", 2, (8,), (4.5,))
    with pytest.raises(ValueError, match="choose one of relu, leaky_relu, gelu, silu"):
        ModelConfig("ae", 2, activation="tanh")
    assert ModelConfig("ae", 1, (), ()).latent_dim == 1  # no hidden layers is allowed: a linear map


def test_models_refuse_a_config_of_the_other_kind():
    from course_lib.models import AutoEncoder, VariationalAutoEncoder, is_vae

    with pytest.raises(ValueError, match="AutoEncoder needs a config of kind 'ae'"):
        AutoEncoder(ModelConfig("vae", 2))
    with pytest.raises(ValueError, match="VariationalAutoEncoder needs a config of kind 'vae'"):
        VariationalAutoEncoder(ModelConfig("ae", 2))
    assert is_vae(build_model(ModelConfig("vae", 2))) and not is_vae(build_model(ModelConfig("ae", 2)))
    assert type(build_model(ModelConfig("ae", 2))) is AutoEncoder


def test_linear_model_without_hidden_layers_is_the_matrix_it_holds():
    """With no hidden layers an AE is two affine maps and a sigmoid: check it against the weights by hand."""
    torch.manual_seed(0)
    ae = build_model(ModelConfig("ae", 3, (), ()))
    x = torch.rand(2, 1, 28, 28)
    enc, dec = ae.encoder[0], ae.decoder[0]
    z = x.reshape(2, 784) @ enc.weight.T + enc.bias
    assert torch.allclose(ae.encode(x), z, atol=1e-6)
    assert torch.allclose(ae.encode(x.reshape(2, 784)), z, atol=1e-6)  # flat pixels work too
    assert torch.allclose(ae(x), torch.sigmoid(z @ dec.weight.T + dec.bias).reshape(2, 1, 28, 28), atol=1e-6)
    vae = build_model(ModelConfig("vae", 3, (), ()))
    mu, logvar = vae.encode(x)
    assert torch.allclose(mu, x.reshape(2, 784) @ vae.fc_mu.weight.T + vae.fc_mu.bias, atol=1e-6)
    assert torch.allclose(logvar, x.reshape(2, 784) @ vae.fc_logvar.weight.T + vae.fc_logvar.bias, atol=1e-6)
    assert vae.decode(mu).shape == (2, 1, 28, 28)


def test_vae_forward_decodes_a_sample_of_q_not_its_mean():
    torch.manual_seed(0)
    vae = build_model(ModelConfig("vae", 3, (16,), (16,))).eval()
    x = torch.rand(4, 1, 28, 28)
    x_hat, mu, logvar = vae(x, torch.Generator().manual_seed(2))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(x_hat, vae.decode(mu + torch.exp(0.5 * logvar) * eps), atol=1e-6)
    assert not torch.allclose(x_hat, vae.decode(mu), atol=1e-3)
    assert torch.equal(logvar, vae.encode(x)[1])


def test_count_parameters_counts_trainable_weights_only():
    model = build_model(ModelConfig("ae", 2, (4,), (4,)))
    full = (784 * 4 + 4) + (4 * 2 + 2) + (2 * 4 + 4) + (4 * 784 + 784)
    assert count_parameters(model) == full
    model.encoder[0].weight.requires_grad_(False)
    assert count_parameters(model) == full - 784 * 4


def test_preset_configs_are_the_article_models():
    from course_lib.models import PRESETS, preset_config

    assert preset_config("seed-improved-vae") is PRESETS["seed-improved-vae"]
    assert preset_config("seed-baseline-ae") == ModelConfig("ae", 3, (128, 64, 12), (12, 64, 128))
    with pytest.raises(ValueError, match="choose one of seed-baseline-ae, seed-baseline-vae"):
        preset_config("nope")


def test_objectives_score_the_reconstruction_of_the_inputs_against_the_targets():
    torch.manual_seed(0)
    inputs, targets = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    ae = build_model(ModelConfig("ae", 2, (8,), (8,)))
    with torch.no_grad():
        expected = (ae(inputs) - targets).pow(2).mean(dim=(1, 2, 3))
        assert torch.allclose(losses.MSEObjective()(ae, inputs, targets, None), expected)
    vae = build_model(ModelConfig("vae", 2, (8,), (8,)))
    with torch.no_grad():
        mu, logvar = vae.encode(inputs)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
        p = vae.decode(z)
        bce = -(targets * p.log() + (1 - targets) * (1 - p).log()).sum(dim=(1, 2, 3))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
        got = losses.BetaVAEObjective(0.25)(vae, inputs, targets, torch.Generator().manual_seed(5))
    assert torch.allclose(got, bce + 0.25 * kl, rtol=1e-5)
    assert losses.default_objective(ae) == losses.MSEObjective()
    assert losses.default_objective(vae) == losses.BetaVAEObjective(1.0)


def test_per_image_losses_keep_images_apart():
    x = torch.stack([torch.full((1, 28, 28), v) for v in (0.0, 0.5, 1.0)])
    assert torch.allclose(losses.mse_per_pixel(torch.zeros_like(x), x), torch.tensor([0.0, 0.25, 1.0]))
    p = torch.full_like(x, 0.25)
    per_pixel = -(x * torch.log(torch.tensor(0.25)) + (1 - x) * torch.log(torch.tensor(0.75)))
    assert torch.allclose(losses.bce_per_image(p, x), 784 * per_pixel[:, 0, 0, 0])
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.log(torch.tensor([[1.0, 4.0], [1.0, 1.0]]))
    # KL_j = (mu^2 + sigma^2 - log sigma^2 - 1) / 2
    assert torch.allclose(losses.kl_per_unit(mu, logvar), torch.tensor([[0.5, (4 - math.log(4) - 1) / 2], [0, 2.0]]))
    assert torch.allclose(losses.kl_per_image(mu, logvar), torch.tensor([0.5 + (3 - math.log(4)) / 2, 2.0]))
    for beta in (0.0, 0.5, 1.0):
        loss = losses.beta_vae_loss(p, x, mu[:1].expand(3, 2), logvar[:1].expand(3, 2), beta)
        assert torch.allclose(loss, losses.bce_per_image(p, x) + beta * (0.5 + (3 - math.log(4)) / 2))
    assert torch.allclose(losses.beta_vae_loss(p, x, mu[:1].expand(3, 2), logvar[:1].expand(3, 2)),
                          losses.bce_per_image(p, x) + 0.5 + (3 - math.log(4)) / 2)  # beta = 1 by default


def test_layers_one_unit_wide_are_allowed():
    assert count_parameters(build_model(ModelConfig("ae", 1, (1,), (1,)))) == (784 + 1) + 2 + 2 + (784 + 784)


# ---- Convolutional models (notebook 08) ----
def conv_config(kind="ae", latent_dim=16, spatial=False, batch_norm=False):
    return ModelConfig(kind, latent_dim, (16, 32), (32, 16), "leaky_relu", batch_norm, "conv", spatial)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(architecture="cnn"), "unknown architecture 'cnn'"),
        (dict(architecture="conv", encoder_widths=(8, 16, 32)), "two encoder and two decoder widths"),
        (dict(architecture="conv", decoder_widths=(8,)), "two encoder and two decoder widths"),
        (dict(spatial_latent=True, latent_dim=98), "a spatial latent needs architecture='conv'"),
        (dict(architecture="conv", spatial_latent=True, latent_dim=50), "latent_dim a multiple of 49"),
        (dict(architecture="conv", spatial_latent=True, latent_dim=56), "latent_dim a multiple of 49"),
    ],
)
def test_invalid_conv_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**({"kind": "vae", "latent_dim": 16, "encoder_widths": (8, 16), "decoder_widths": (16, 8)}
                       | kwargs))


def test_conv_models_map_images_to_codes_and_back():
    images = torch.rand(5, 1, 28, 28)
    for config, shape in ((conv_config("ae"), (16,)), (conv_config("vae", 4 * 49, spatial=True), (4, 7, 7))):
        model = build_model(config).eval()
        code = model.encode(images)
        mu = code[0] if config.kind == "vae" else code
        assert config.latent_shape == shape and mu.shape == (5, config.latent_dim)
        out = model.decode(mu)
        assert out.shape == (5, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    assert conv_config().input_shape == (1, 28, 28) and ModelConfig("ae", 3).input_shape == (784,)


def test_conv_ae_parameter_count_is_its_layers():
    # conv 1->16 (4x4) + conv 16->32 (4x4) + linear 32*49->16 | linear 16->32*49 + convT 32->16 + convT 16->16 (4x4)
    # + conv 16->1 (3x3), each with its bias
    expected = (16 * 16 + 16) + (16 * 32 * 16 + 32) + (32 * 49 * 16 + 16) + (16 * 32 * 49 + 32 * 49) \
        + (32 * 16 * 16 + 16) + (16 * 16 * 16 + 16) + (16 * 9 + 1)
    assert count_parameters(build_model(conv_config())) == expected == 72721


def test_conv_batch_norm_follows_every_hidden_layer():
    # a scale and a shift per channel after conv 1->16, conv 16->32 | linear 16->32*49 (BatchNorm1d over its 1568
    # features), convT 32->16, convT 16->16; none after the code or the output convolution
    norms = 2 * (16 + 32) + 2 * (32 * 49) + 2 * (16 + 16)
    assert count_parameters(build_model(conv_config(batch_norm=True))) == 72721 + norms == 76017
    spatial = build_model(conv_config("ae", 2 * 49, spatial=True, batch_norm=True))
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in spatial.modules()) == 5  # 2 encoder + 3 decoder layers


def test_a_spatial_code_is_local_and_a_vector_code_is_not():
    """Changing the spatial code at its top-left position leaves the bottom-right of the image alone; changing one
    unit of a vector code changes every part of the image."""
    torch.manual_seed(0)
    spatial = build_model(conv_config("ae", 2 * 49, spatial=True)).eval()
    z = torch.randn(1, 2, 7, 7)
    moved = z.clone()
    moved[0, :, 0, 0] += 3.0
    with torch.no_grad():
        before, after = spatial.decode(z.flatten(1)), spatial.decode(moved.flatten(1))
    changed = (after - before).abs()[0, 0] > 1e-6
    assert changed[:4, :4].any() and not changed[14:, 14:].any()
    images = torch.rand(1, 1, 28, 28)
    edited = images.clone()
    edited[0, 0, :4, :4] = 1 - edited[0, 0, :4, :4]
    with torch.no_grad():
        codes = (spatial.encode(edited) - spatial.encode(images)).abs().reshape(2, 7, 7) > 1e-6
    assert codes[:, 0, 0].any() and not codes[:, 4:, 4:].any()
    vector = build_model(conv_config("ae", 16)).eval()
    unit = torch.zeros(1, 16)
    unit[0, 0] = 3.0
    with torch.no_grad():
        changed = (vector.decode(unit) - vector.decode(torch.zeros(1, 16))).abs()[0, 0] > 1e-6
    assert changed[:4, :4].any() and changed[24:, 24:].any()
