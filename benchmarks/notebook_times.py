"""Time the notebooks in one mode: each executed from a cold start (fresh output folder, so nothing is cached),
repeated, and printed as the median with its range.

    python benchmarks/notebook_times.py --mode fast --repeats 3            # every notebook
    python benchmarks/notebook_times.py --mode reference --repeats 3 notebooks/0[0-3]_*.ipynb

Nothing is written to the notebooks: each run executes a copy in memory with the notebooks folder as its working
directory. Run it on an otherwise idle machine; ``OMP_NUM_THREADS`` is passed on to the kernels as set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course_lib.measure import Timing

ROOT = Path(__file__).resolve().parent.parent


def run_once(path: Path, mode: str) -> float:
    """Execute ``path`` in ``mode`` with an empty output folder; return the wall-clock seconds, kernel included."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="course-times-") as outputs:
        os.environ |= {"COURSE_MODE": mode, "COURSE_OUTPUT_DIR": outputs}
        os.environ.pop("COURSE_FAST", None)
        os.environ.pop("COURSE_SOLVE_EXERCISES", None)  # the learner's view: exercises unanswered
        start = time.perf_counter()
        NotebookClient(notebook, timeout=None, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("fast", "reference", "full"), default="fast")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    print(f"{args.mode} mode, {args.repeats} cold runs each, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}",
          f"{os.cpu_count()} CPUs", flush=True)
    medians = []
    for path in notebooks:
        seconds = []
        for _ in range(args.repeats):
            seconds.append(run_once(path.resolve(), args.mode))
            print(f"  {path.name}: run {len(seconds)} took {seconds[-1]:.1f} s", file=sys.stderr, flush=True)
        timing = Timing(tuple(seconds))
        medians.append(timing.median)
        print(f"{path.name:34} median {timing.median:7.1f} s  (range {min(seconds):.1f}-{max(seconds):.1f} s, "
              f"{len(seconds)} runs)", flush=True)
    print(f"{'all of them':34} {sum(medians):7.1f} s  (sum of the medians)")


if __name__ == "__main__":
    main()
