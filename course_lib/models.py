"""Fully connected AE and VAE built from a small config, with presets that reproduce the seed article.

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
PIXELS = 28 * 28


@dataclass(frozen=True)
class ModelConfig:
    """What defines an AE or VAE: hidden widths, latent dimension, activation, batch norm.

    ``encoder_widths`` are the hidden layers from the 784 pixels towards the latent code,
    ``decoder_widths`` those from the code back to the 784 pixels (which end in a sigmoid).
    """

    kind: str
    latent_dim: int
    encoder_widths: tuple[int, ...] = (128, 64)
    decoder_widths: tuple[int, ...] = (64, 128)
    activation: str = "relu"
    batch_norm: bool = False

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
        object.__setattr__(self, "encoder_widths", tuple(self.encoder_widths))
        object.__setattr__(self, "decoder_widths", tuple(self.decoder_widths))

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


def _decoder(config: ModelConfig) -> nn.Sequential:
    widths = [config.latent_dim, *config.decoder_widths]
    return nn.Sequential(
        *_mlp(widths, config.activation, config.batch_norm), nn.Linear(widths[-1], PIXELS), nn.Sigmoid()
    )


class AutoEncoder(nn.Module):
    """Deterministic encoder to a latent code z, decoder back to pixel probabilities in [0, 1]."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.kind != "ae":
            raise ValueError("AutoEncoder needs a config of kind 'ae'")
        self.config = config
        widths = [PIXELS, *config.encoder_widths]
        self.encoder = nn.Sequential(
            *_mlp(widths, config.activation, config.batch_norm), nn.Linear(widths[-1], config.latent_dim)
        )
        self.decoder = _decoder(config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(-1, PIXELS))

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
        widths = [PIXELS, *config.encoder_widths]
        self.encoder = nn.Sequential(*_mlp(widths, config.activation, config.batch_norm))
        self.fc_mu = nn.Linear(widths[-1], config.latent_dim)
        self.fc_logvar = nn.Linear(widths[-1], config.latent_dim)
        self.decoder = _decoder(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.reshape(-1, PIXELS))
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


