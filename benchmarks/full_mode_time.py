"""How long notebook 04's full mode takes on this machine: every configuration's epoch timed at full size.

    python benchmarks/full_mode_time.py                  # CPU or the default device
    python benchmarks/full_mode_time.py --device cuda

Full mode trains 17 configurations x 2 models (the ladder and leave-one-out; 30 distinct models, as the
notebook trains identical ones once) for the article's 200 or 500 epochs on 54,000 training images,
validating on 6,000 after every epoch: many hours on a CPU. This script
trains each distinct model for one warm-up epoch and ``--epochs`` timed ones on data of exactly that size
(Fashion-MNIST from Debian when present, else mnist-5k tiled), validation included, and prints seconds per
epoch and the projected full-mode training time per configuration and in total. It is a projection from
measured epochs, not a measurement of the whole run (the notebook prints that one when it finishes).
"""

from __future__ import annotations

import argparse
import time

import torch

from course_lib import improvements as imp
from course_lib.data import DEBIAN_FASHION_MNIST, load_dataset, read_idx
from course_lib.device import pick_device
from course_lib.diffusion import synchronize
from course_lib.evaluate import evaluate
from course_lib.models import build_model
from course_lib.train import fit

TRAIN, VALIDATION = 54_000, 6_000


def full_size_images() -> tuple[torch.Tensor, str]:
    """60,000 28x28 images in [0, 1]: Debian's Fashion-MNIST, or mnist-5k's 4,000 training digits tiled."""
    if DEBIAN_FASHION_MNIST.exists():
        images = read_idx(DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz")
        return (images.float() / 255).unsqueeze(1), f"Fashion-MNIST ({DEBIAN_FASHION_MNIST})"
    small = load_dataset("mnist-5k").train_images
    reps = -(-(TRAIN + VALIDATION) // len(small))
    return small.repeat(reps, 1, 1, 1)[: TRAIN + VALIDATION], "mnist-5k tiled to 60,000 images"


def seconds_per_epoch(recipe: imp.Recipe, kind: str, train: torch.Tensor, val: torch.Tensor, epochs: int) -> float:
    """Mean seconds of ``epochs`` training epochs (after a warm-up one), plus one validation pass each."""
    torch.manual_seed(0)
    model = build_model(recipe.ae if kind == "ae" else recipe.vae).to(train.device)
    cfg = recipe.train.replace(epochs=1 + epochs, eval_every=1)
    synchronize(train.device)
    history = fit(model, train, cfg, val, progress=False)
    started = time.perf_counter()
    evaluate(model, val)
    synchronize(train.device)
    validation = time.perf_counter() - started
    return sum(history["seconds"][1:]) / epochs + validation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per model (after one warm-up)")
    args = parser.parse_args()
    device = pick_device(args.device)
    images, source = full_size_images()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    train, val = images[order[:TRAIN]].to(device), images[order[TRAIN : TRAIN + VALIDATION]].to(device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; data: {source}, "
          f"train {len(train):,}, validation {len(val):,}\n")
    print(f"{'configuration':32}{'epochs':>7}{'batch':>6}{'AE s/ep':>9}{'VAE s/ep':>10}{'projected':>11}")
    timed: dict[str, float] = {}  # model fingerprint -> seconds per epoch; a shared model is timed and counted once
    total = 0.0
    for recipe in [*imp.ladder(), *imp.leave_one_out_recipes()]:
        cells, projected = [], 0.0
        for kind, width in (("ae", 9), ("vae", 10)):
            key = imp.model_fingerprint(recipe, kind, 0)
            if key in timed:
                cells.append(f"{'shared':>{width}}")
                continue
            timed[key] = seconds_per_epoch(recipe, kind, train, val, args.epochs)
            projected += timed[key] * recipe.train.epochs
            cells.append(f"{timed[key]:>{width}.2f}")
        total += projected
        print(f"{recipe.name:32}{recipe.train.epochs:>7}{recipe.train.batch_size:>6}{''.join(cells)}"
              f"{projected / 60:>9.1f} m", flush=True)
    print(f"\nprojected full-mode training time of notebook 04 ({len(timed)} distinct models; 'shared': "
          f"trained once, for the row above that has it): {total / 3600:.1f} hours on {device}")


if __name__ == "__main__":
    main()
