"""course_lib: the tested library behind the course "Faster diffusion with autoencoders".

The taught core (what the notebooks show, bottom to top):

- ``config``: the mode (fast, reference or full), data and output folders, the compute device, seeding.
- ``data``: datasets as [0, 1] tensors, input checks, the device-resident batch iterator, balanced subsets.
- ``augment``: on-device random rotation and noise.
- ``models``: AE and VAE built from a small config; the article's four presets.
- ``losses``: MSE, BCE, the closed-form KL, and the objectives (the VAE's owns beta), in stated units.
- ``train``: ``train_epoch`` (one pass of training) and ``fit`` around it (history, schedule, checkpoints).
- ``checkpoints``: safe ``weights_only`` save and load, and the one train-or-load cache (fingerprinted).
- ``evaluate``: encode, decode, reconstruct, sample the prior, interpolate, test-set metrics.
- ``metrics``: PSNR, the judge classifier and FLD, AUROC, a linear probe, latent statistics.
- ``baselines``: PCA.
- ``measure``: FLOPs of a forward pass, GPU-synchronised timing, medians of repeats.
- ``viz``: image grids (torchvision's make_grid), the article's comparison figure, curves, class histograms.
- ``report``: the one table printer (aligned text or Markdown).
- ``compare``: a metric's mean and spread over seeds, and a paired verdict per change.
- ``exercises``: every notebook's exercise checks and stored solutions.
- ``notebook_tools``: the notebooks' set-up cell, ``show_source``, widget-state stripping, the repository address.

``diffusion/``: DDPM in pixel and latent space (``schedule``, ``denoisers``, ``training``, ``spaces``).

``experiments/``: one module per lesson experiment, built on the core: ``recipes`` and ``ablation`` (04),
``latent_sweep``, ``latent_explorers`` and ``latent_map_explorers`` (05), ``pixel_vs_latent`` (06), ``claims`` and
``claim_verdicts`` (07).
"""

__version__ = "0.1.0"
