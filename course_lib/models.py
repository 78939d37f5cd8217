"""AE and VAE built from a small config: fully connected (the seed article's, with presets that reproduce it) or
convolutional, with a latent vector or a spatial latent (channels x 7 x 7, as Stable Diffusion's autoencoder).

Module names follow the article's code (``encoder``, ``decoder``, and ``fc_mu`` / ``fc_logvar`` for the VAE),
so a state_dict of the article's models loads into the matching preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
KINDS = ("ae", "vae")
ARCHITECTURES = ("mlp", "conv")
PIXELS = 28 * 28
GRID = 7  # a convolutional model's feature maps: 28 x 28 -> 14 x 14 -> 7 x 7


@dataclass(frozen=True)
class ModelConfig:
    """What defines an AE or VAE: architecture, hidden widths, latent dimension, activation, batch norm.

    ``architecture="mlp"``: ``encoder_widths`` are the hidden layers from the 784 pixels towards the latent code,
    ``decoder_widths`` those from the code back to the 784 pixels (which end in a sigmoid).
    ``architecture="conv"``: ``encoder_widths`` are the channels of the two stride-2 convolutions (28 -> 14 -> 7),
    ``decoder_widths`` those of the two transposed ones (7 -> 14 -> 28). With ``spatial_latent`` the code is a
    ``latent_dim // 49`` x 7 x 7 feature map (flattened to ``latent_dim`` values outside the model), otherwise a
    vector made from the 7 x 7 maps by a linear layer.
    """

    kind: str
    latent_dim: int
    encoder_widths: tuple[int, ...] = (128, 64)
    decoder_widths: tuple[int, ...] = (64, 128)
    activation: str = "relu"
    batch_norm: bool = False
    architecture: str = "mlp"
    spatial_latent: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; choose 'ae' or 'vae'")
        if not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ValueError(f"latent_dim must be an integer >= 1, got {self.latent_dim!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        widths = (*self.encoder_widths, *self.decoder_widths)
        if any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"layer widths must be integers >= 1, got {widths}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; choose 'mlp' or 'conv'")
        if self.architecture == "conv" and (len(self.encoder_widths) != 2 or len(self.decoder_widths) != 2):
            raise ValueError("a conv model needs two encoder and two decoder widths (28 -> 14 -> 7 and back)")
        if self.spatial_latent and (self.architecture != "conv" or self.latent_dim % GRID**2):
            raise ValueError(f"a spatial latent needs architecture='conv' and latent_dim a multiple of {GRID**2} "
                             f"(channels x {GRID} x {GRID}), got {self.architecture!r} and {self.latent_dim}")
        object.__setattr__(self, "encoder_widths", tuple(self.encoder_widths))
        object.__setattr__(self, "decoder_widths", tuple(self.decoder_widths))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The code's shape for one image: ``(latent_dim,)``, or ``(channels, 7, 7)`` for a spatial latent."""
        return (self.latent_dim // GRID**2, GRID, GRID) if self.spatial_latent else (self.latent_dim,)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """What the encoder reads for one image: 784 values (MLP) or a 1 x 28 x 28 image (conv)."""
        return (PIXELS,) if self.architecture == "mlp" else (1, 28, 28)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint loads with ``weights_only=True``."""
        d = asdict(self)
        d["encoder_widths"], d["decoder_widths"] = list(self.encoder_widths), list(self.decoder_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        d["encoder_widths"], d["decoder_widths"] = tuple(d["encoder_widths"]), tuple(d["decoder_widths"])
        return cls(**d)


def _mlp(widths: list[int], activation: str, batch_norm: bool) -> list[nn.Module]:
    """Linear layers between consecutive ``widths``, each followed by (batch norm and) the activation."""
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers.append(nn.Linear(w_in, w_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(w_out))
        layers.append(ACTIVATIONS[activation]())
    return layers


def _conv(c_in: int, c_out: int, config: ModelConfig, transposed: bool = False) -> list[nn.Module]:
    """A stride-2 convolution (halves the side) or transposed convolution (doubles it), (batch norm,) activation."""
    conv = (nn.ConvTranspose2d if transposed else nn.Conv2d)(c_in, c_out, 4, stride=2, padding=1)
    return [conv, *([nn.BatchNorm2d(c_out)] if config.batch_norm else []), ACTIVATIONS[config.activation]()]


def _encoder_body(config: ModelConfig) -> tuple[list[nn.Module], int]:
    """The encoder's hidden layers, and the number of features (MLP, flattened maps) or channels (spatial
    latent) they end in."""
    if config.architecture == "mlp":
        widths = [PIXELS, *config.encoder_widths]
        return _mlp(widths, config.activation, config.batch_norm), widths[-1]
    c1, c2 = config.encoder_widths
    layers = [*_conv(1, c1, config), *_conv(c1, c2, config)]  # 1 x 28 x 28 -> c1 x 14 x 14 -> c2 x 7 x 7
    return (layers, c2) if config.spatial_latent else ([*layers, nn.Flatten()], c2 * GRID**2)


def _latent_head(config: ModelConfig, features: int) -> nn.Module:
    """From the encoder's features to ``latent_dim`` numbers: a linear layer, or for a spatial latent a 1 x 1
    convolution to its channels (flattened)."""
    if config.spatial_latent:
        return nn.Sequential(nn.Conv2d(features, config.latent_shape[0], 1), nn.Flatten())
    return nn.Linear(features, config.latent_dim)


def _decoder(config: ModelConfig) -> nn.Sequential:
    """From ``latent_dim`` numbers to pixel probabilities (a sigmoid at the end)."""
    if config.architecture == "mlp":
        widths = [config.latent_dim, *config.decoder_widths]
        return nn.Sequential(
            *_mlp(widths, config.activation, config.batch_norm), nn.Linear(widths[-1], PIXELS), nn.Sigmoid()
        )
    c1, c2 = config.decoder_widths
    if config.spatial_latent:  # the code's channels x 7 x 7 -> c1 x 7 x 7
        start = [nn.Unflatten(1, config.latent_shape), nn.Conv2d(config.latent_shape[0], c1, 3, padding=1),
                 *([nn.BatchNorm2d(c1)] if config.batch_norm else []), ACTIVATIONS[config.activation]()]
    else:  # the code vector -> c1 x 7 x 7
        start = [*_mlp([config.latent_dim, c1 * GRID**2], config.activation, config.batch_norm),
                 nn.Unflatten(1, (c1, GRID, GRID))]
    return nn.Sequential(*start, *_conv(c1, c2, config, transposed=True), *_conv(c2, c2, config, transposed=True),
                         nn.Conv2d(c2, 1, 3, padding=1), nn.Sigmoid())  # 7 -> 14 -> 28, then to one channel


class AutoEncoder(nn.Module):
    """Deterministic encoder to a latent code z, decoder back to pixel probabilities in [0, 1]."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.kind != "ae":
            raise ValueError("AutoEncoder needs a config of kind 'ae'")
        self.config = config
        body, features = _encoder_body(config)
        self.encoder = nn.Sequential(*body, _latent_head(config, features))
        self.decoder = _decoder(config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(-1, *self.config.input_shape))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(-1, 1, 28, 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class VariationalAutoEncoder(nn.Module):
    """Encoder to a diagonal Gaussian q(z|x) = N(mu, exp(logvar)), reparameterized sample, decoder."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.kind != "vae":
            raise ValueError("VariationalAutoEncoder needs a config of kind 'vae'")
        self.config = config
        body, features = _encoder_body(config)
        self.encoder = nn.Sequential(*body)
        self.fc_mu = _latent_head(config, features)
        self.fc_logvar = _latent_head(config, features)
        self.decoder = _decoder(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.reshape(-1, *self.config.input_shape))
        return self.fc_mu(h), self.fc_logvar(h)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): the sample stays differentiable in mu and sigma."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(-1, 1, 28, 28)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, generator)), mu, logvar


Model = AutoEncoder | VariationalAutoEncoder


def build_model(config: ModelConfig) -> Model:
    """An untrained AE or VAE for ``config``."""
    return AutoEncoder(config) if config.kind == "ae" else VariationalAutoEncoder(config)


PRESETS: dict[str, ModelConfig] = {
    "seed-baseline-ae": ModelConfig("ae", 3, (128, 64, 12), (12, 64, 128)),
    "seed-baseline-vae": ModelConfig("vae", 3, (128, 64), (64, 128)),
    "seed-improved-ae": ModelConfig("ae", 16, (256, 128, 64), (64, 128, 256), "leaky_relu", True),
    "seed-improved-vae": ModelConfig("vae", 16, (256, 128), (128, 256), "leaky_relu", True),
}
"""The seed article's four models: 219,891 / 218,838 / 488,864 / 476,208 parameters."""


def preset_config(name: str) -> ModelConfig:
    """The config of a named preset (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset(name: str) -> Model:
    """An untrained model of a named preset, e.g. ``preset("seed-baseline-vae")``."""
    return build_model(preset_config(name))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def is_vae(model: nn.Module) -> bool:
    return isinstance(model, VariationalAutoEncoder)


