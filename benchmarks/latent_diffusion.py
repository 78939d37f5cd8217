"""Latent vs pixel diffusion, a race measured in one run: sample quality (FLD) against training time, both sides at
equal optimizer steps, sampling speed at several batch sizes and step counts (medians of 5), and a memorisation check.

Both denoisers train on the same images with the same batch, learning rate and no augmentation, with snapshots of
their weights on the way; the latent side's seconds include its autoencoder's training. Each snapshot samples the
same number of images with the same DDIM steps and is judged by the FLD (Frechet distance in the features of the
course's digit classifier) to half the test set; the other half is the floor. The experiment is notebook 06's, from
course_lib.experiments.pixel_vs_latent, with the settings of the chosen mode; trained sides are cached in
outputs/06_race (the notebook and this script share the cache: delete it to time the training again).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/latent_diffusion.py --mode reference

The verdicts are computed from the numbers measured in this run; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("fast", "reference", "full"), default=None,
                   help="the course mode whose race settings to use (default: COURSE_MODE, else the course default)")
    p.add_argument("--dataset", default="mnist-5k", help="mnist-5k (default, offline), mnist or fashion-mnist")
    p.add_argument("--autoencoder", default="vae", choices=("vae", "ae"), help="whose latent space (default vae)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    p.add_argument("--cache", default=None, help="folder of the cached sides (default outputs/06_race)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode:
        os.environ["COURSE_MODE"] = args.mode  # read by course_lib.config on import
    from course_lib import config
    from course_lib.experiments import pixel_vs_latent as E

    started = time.perf_counter()
    print(config.describe())
    race = E.run(args.dataset, autoencoder=args.autoencoder, seed=args.seed, device=args.device, folder=args.cache)
    print(f"\njudge test accuracy {race.judge_accuracy:.3f}\n")
    print(E.curve_table(race.pixel, race.latent), "\n")
    print(E.equal_steps_table(race.pixel, race.latent), "\n")
    print(E.reference_table(race.references, race.spreads), "\n")
    print(E.speed_table(race.speed), "\n")
    for name, check in race.memorisation.items():
        print(f"{name}: {check}")
    print(f"\n{race.verdict.text}\n\n(total run time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
