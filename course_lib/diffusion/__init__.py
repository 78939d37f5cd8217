"""Denoising diffusion (DDPM) in pixel space and in an autoencoder's latent space.

- ``schedule``: the noise schedule, the forward process q(x_t | x_0), the DDPM and DDIM samplers.
- ``denoisers``: eps_theta(x_t, t) with a sinusoidal time embedding: a pixel U-Net, a latent MLP, a latent conv net.
- ``training``: the epsilon-prediction loss and training for a number of steps, with snapshots.
- ``spaces``: pixels in [-1, 1], latents standardised by one scale factor, and sampling images from each.
"""

from course_lib.diffusion.denoisers import (
    LatentConvNet,
    LatentMLP,
    PixelUNet,
    TimeEmbedding,
    flops_per_image,
    timestep_embedding,
)
from course_lib.diffusion.schedule import SCHEDULES, NoiseSchedule, ddim_sample, ddpm_sample
from course_lib.diffusion.spaces import (
    LatentScaler,
    sample_latent_images,
    sample_pixel_images,
    to_image_range,
    to_model_range,
)
from course_lib.diffusion.training import DiffusionHistory, Snapshot, diffusion_loss, train_diffusion

__all__ = [
    "SCHEDULES",
    "Snapshot",
    "DiffusionHistory",
    "LatentConvNet",
    "LatentMLP",
    "LatentScaler",
    "NoiseSchedule",
    "PixelUNet",
    "TimeEmbedding",
    "ddim_sample",
    "ddpm_sample",
    "diffusion_loss",
    "flops_per_image",
    "sample_latent_images",
    "sample_pixel_images",
    "timestep_embedding",
    "to_image_range",
    "to_model_range",
    "train_diffusion",
]
