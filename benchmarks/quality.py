"""Train the seed article's two recipes and notebook 08's conv models with course_lib on mnist-5k; print test metrics.

    python benchmarks/quality.py            # baseline 200 epochs, improved 500 epochs, conv 42 (a few minutes)
    python benchmarks/quality.py --scale 0.1   # a tenth of the epochs, for a quick look

The recipes are lesson 04's (``course_lib.experiments.recipes``: the article's baseline, and its improved models
exactly as it trains them, beta 0.5 included), trained by the same ``run_recipe`` as notebook 04. Reference figures
(a faithful re-implementation of the article's scripts on mnist-5k, test set not augmented) are printed beside
course_lib's so the two can be compared; course_lib should land within 10%. Then the last rung of notebook 08's
ladder (``course_lib.experiments.beyond``: conv AE and VAE, latent 16) is trained from the same seed and printed
beside the improved recipe of this run and issue 16's goals, with the training seconds of both.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

import torch

from course_lib.baselines import pca_test_mse
from course_lib.config import pick_device
from course_lib.data import load_dataset
from course_lib.experiments import beyond, recipes

REFERENCE = {
    ("baseline", "ae", "mse"): 0.0486,
    ("baseline", "vae", "neg_elbo"): 157.4,
    ("improved", "ae", "mse"): 0.0146,
    ("improved", "vae", "neg_elbo"): 112.1,
    ("pca-16", "pca", "mse"): 0.0266,
}
METRICS = {"ae": ("mse",), "vae": ("mse", "neg_elbo", "neg_elbo_z_mean", "kl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the article's epochs (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = pick_device(args.device)
    data = load_dataset("mnist-5k").to(device)
    print(f"{data.describe()}; device {device}; torch {torch.__version__}; threads {torch.get_num_threads()}")

    rows = [("pca-16", "pca", "mse", pca_test_mse(data.train_images.cpu(), data.test_images.cpu(), 16))]
    improved_seconds = {}
    for recipe in (recipes.baseline_recipe(), recipes.article_improved_recipe()):
        epochs = max(1, round(recipe.train.epochs * args.scale))
        recipe = recipe.replace(train=recipe.train.replace(epochs=epochs, eval_every=10**9))
        row = recipes.run_recipe(recipe, data.train_images, None, data.test_images, device, seed=args.seed).row
        for kind in ("ae", "vae"):
            rows += [(recipe.name, kind, metric, row[f"{kind}_{metric}"]) for metric in METRICS[kind]]
            print(f"  {recipe.name} {kind}: {epochs} epochs in {row[f'{kind}_seconds']:.0f} s")
            improved_seconds[kind] = row[f"{kind}_seconds"]
    conv_rung = beyond.ladder()[-1]
    conv_epochs = max(1, round(conv_rung.train.epochs * args.scale))
    conv_rung = dataclasses.replace(conv_rung, train=conv_rung.train.replace(epochs=conv_epochs))
    conv = {}
    with tempfile.TemporaryDirectory() as folder:  # trained here, never loaded from notebook 08's cache
        for kind in ("ae", "vae"):
            conv[kind] = beyond.train_rung(conv_rung, kind, data, seed=args.seed, folder=folder, progress=False)
            print(f"  conv {kind} ({conv_rung.name}): {conv_epochs} epochs in {conv[kind].seconds:.0f} s")

    print(f"\n{'recipe':<10}{'model':<6}{'test metric':<18}{'course_lib':>12}{'reference':>11}{'diff':>9}")
    for recipe_name, kind, metric, value in rows:
        ref = REFERENCE.get((recipe_name, kind, metric))
        diff = f"{(value - ref) / ref:+.1%}" if ref else ""
        print(f"{recipe_name:<10}{kind:<6}{metric:<18}{value:>12.4f}{ref if ref else '':>11}{diff:>9}")
    print("\nnotebook 08's conv models (latent 16) against the article's improved recipe, this run:")
    print(f"{'model':<6}{'test metric':<12}{'conv':>10}{'improved':>10}{'goal':>8}{'conv s':>9}{'improved s':>12}")
    improved = {(kind, metric): value for name, kind, metric, value in rows if name == "improved"}
    for kind in ("ae", "vae"):
        metric, goal = beyond.GOALS[kind]
        print(f"{kind:<6}{metric:<12}{conv[kind].metrics[metric]:>10.4f}{improved[kind, metric]:>10.4f}{goal:>8g}"
              f"{conv[kind].seconds:>9.0f}{improved_seconds[kind]:>12.0f}")
    print("\nmse: per pixel; neg_elbo: nats per image at beta=1 (one sampled z); kl: nats per image.")
    if args.scale != 1.0:
        print(f"Epochs scaled by {args.scale}: the reference figures are for the full recipes.")


if __name__ == "__main__":
    main()
