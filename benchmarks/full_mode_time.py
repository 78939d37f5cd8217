"""How long notebook 04's full mode takes on this machine: every configuration's epoch timed at full size.

    python benchmarks/full_mode_time.py                  # CPU or the default device
    python benchmarks/full_mode_time.py --device cuda
    python benchmarks/full_mode_time.py --configurations 1   # only the first configuration (a smoke run)

Full mode trains 17 configurations x 2 models (the ladder and leave-one-out; 30 distinct models, as the
notebook trains identical ones once) for the article's 200 or 500 epochs on 54,000 training images,
validating on 6,000 after every epoch: many hours on a CPU. This script
trains each distinct model for one warm-up epoch and ``--epochs`` timed ones on data of exactly that size
(Fashion-MNIST from Debian when present, else mnist-5k tiled), validation included, and prints seconds per
epoch and the projected full-mode training time per configuration and in total. It is a projection from
measured epochs, not a measurement of the whole run (the notebook prints that one when it finishes). Each model
is trained by lesson 04's own ``recipes.train_model``.
"""

from __future__ import annotations

import argparse

import torch

from course_lib.config import pick_device
from course_lib.data import DEBIAN_FASHION_MNIST, load_dataset, read_idx
from course_lib.evaluate import evaluate
from course_lib.experiments import recipes
from course_lib.measure import timed
from course_lib.train import held_out_loss

TRAIN, VALIDATION = 54_000, 6_000


def full_size_images() -> tuple[torch.Tensor, str]:
    """60,000 28x28 images in [0, 1]: Debian's Fashion-MNIST, or mnist-5k's 4,000 training digits tiled."""
    if DEBIAN_FASHION_MNIST.exists():
        images = read_idx(DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz")
        return (images.float() / 255).unsqueeze(1), f"Fashion-MNIST ({DEBIAN_FASHION_MNIST})"
    small = load_dataset("mnist-5k").train_images
    reps = -(-(TRAIN + VALIDATION) // len(small))
    return small.repeat(reps, 1, 1, 1)[: TRAIN + VALIDATION], "mnist-5k tiled to 60,000 images"


def seconds_per_epoch(recipe: recipes.Recipe, kind: str, train: torch.Tensor, val: torch.Tensor, epochs: int) -> float:
    """Mean seconds of ``epochs`` training epochs (after a warm-up one), plus one validation pass each."""
    recipe = recipe.replace(train=recipe.train.replace(epochs=1 + epochs, eval_every=1))
    trained = recipes.train_model(recipe, kind, train, val, val, train.device, progress=False)
    objective = recipe.objective(kind)
    _, validation = timed(lambda: (evaluate(trained.model, val), held_out_loss(trained.model, val, objective)),
                          device=train.device)
    return sum(record["seconds"] for record in trained.history[1:]) / epochs + validation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--epochs", type=int, default=1, help="per_epoch epochs per model (after one warm-up)")
    parser.add_argument("--configurations", type=int, default=None, help="time only the first N configurations")
    args = parser.parse_args()
    device = pick_device(args.device)
    images, source = full_size_images()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    train, val = images[order[:TRAIN]].to(device), images[order[TRAIN : TRAIN + VALIDATION]].to(device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; data: {source}, "
          f"train {len(train):,}, validation {len(val):,}\n")
    print(f"{'configuration':32}{'epochs':>7}{'batch':>6}{'AE s/ep':>9}{'VAE s/ep':>10}{'projected':>11}")
    per_epoch: dict[str, float] = {}  # model fingerprint -> seconds per epoch; a shared model is timed and counted once
    total = 0.0
    for recipe in [*recipes.ladder(), *recipes.leave_one_out_recipes()][: args.configurations]:
        cells, projected = [], 0.0
        for kind, width in (("ae", 9), ("vae", 10)):
            key = recipes.model_key(recipe, kind, 0)
            if key in per_epoch:
                cells.append(f"{'shared':>{width}}")
                continue
            per_epoch[key] = seconds_per_epoch(recipe, kind, train, val, args.epochs)
            projected += per_epoch[key] * recipe.train.epochs
            cells.append(f"{per_epoch[key]:>{width}.2f}")
        total += projected
        print(f"{recipe.name:32}{recipe.train.epochs:>7}{recipe.train.batch_size:>6}{''.join(cells)}"
              f"{projected / 60:>9.1f} m", flush=True)
    print(f"\nprojected full-mode training time of notebook 04 ({len(per_epoch)} distinct models; 'shared': "
          f"trained once, for the row above that has it): {total / 3600:.1f} hours on {device}")


if __name__ == "__main__":
    main()
