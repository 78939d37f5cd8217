"""How fast notebook 05's explorers follow a slider: median and range of redraw times, against the 0.5 s goal.

    python benchmarks/explorer_redraw.py              # the notebook's sweep (loaded from its cache, else trained)
    python benchmarks/explorer_redraw.py --tiny       # untrained small models: checks that the script runs

Each explorer is built as in the notebook (same figure sizes, not on display) and every slider is moved
through several positions with :func:`course_lib.experiments.latent_explorers.measure_redraws`. A redraw is
what a slider move costs in the kernel: updating the figure's changing artists, blitting and encoding the PNG
(the trip to the browser is not included). A slider feels live when the median redraw stays under 0.5 s.
Exits with status 1 when an explorer misses that goal.
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from course_lib import config  # noqa: E402
from course_lib.data import load_dataset  # noqa: E402
from course_lib.experiments import latent_sweep  # noqa: E402
from course_lib.experiments.latent_explorers import SweepExplorer, measure_redraws  # noqa: E402
from course_lib.experiments.latent_map_explorers import InterpolationExplorer, LatentMapExplorer  # noqa: E402
from course_lib.losses import BetaVAEObjective, MSEObjective  # noqa: E402
from course_lib.measure import Timing  # noqa: E402
from course_lib.models import ModelConfig, build_model  # noqa: E402

GOAL_SECONDS = 0.5
"""The median redraw time under which a slider feels live."""


def tiny_sweep() -> latent_sweep.Sweep:
    """Untrained small models at the positions the explorers open on, and 1,000 random test images."""
    torch.manual_seed(0)
    images, labels = torch.rand(1000, 1, 28, 28), torch.arange(1000) % 10
    members = [("vae", 2, BetaVAEObjective(1.0)), ("vae", 16, BetaVAEObjective(1.0)), ("ae", 16, MSEObjective())]
    models = [(build_model(ModelConfig(kind, d, (32,), (32,))), objective) for kind, d, objective in members]
    return latent_sweep.Sweep.from_models(models, images, labels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="untrained small models instead of the notebook's sweep")
    parser.add_argument("--moves", type=int, default=6, help="slider positions per slider (default 6)")
    args = parser.parse_args()

    if args.tiny:
        sweep = tiny_sweep()
        print("tiny sweep: untrained models (the figures are full size; only the script is checked)")
    else:
        spec = latent_sweep.default_spec()
        print(config.describe())
        print(spec.describe())
        sweep = latent_sweep.train_or_load(spec, load_dataset(spec.dataset), config.pick_device())
    missed = []
    for name, explorer in (
        ("sweep", SweepExplorer(sweep)),
        ("2-D latent map", LatentMapExplorer(sweep)),
        ("interpolation", InterpolationExplorer(sweep)),
    ):
        timing = Timing(tuple(measure_redraws(explorer, moves_per_slider=args.moves)))
        print(f"{name:>15}: redraw {timing}")
        if timing.median >= GOAL_SECONDS:
            missed.append(name)
    print(f"goal: median redraw under {GOAL_SECONDS} s: " + ("met" if not missed else f"missed by {missed}"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
