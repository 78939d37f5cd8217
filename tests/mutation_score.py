"""Mutation score per package, from the results `mutmut run` left in mutants/ (run by `make mutation`).

    .venv/bin/python tests/mutation_score.py              # killed / total per package, against the goals
    .venv/bin/python tests/mutation_score.py --survivors  # also every mutant not killed, with its one-line change

A mutant counts as killed when a test failed (or timed out) with the bug planted. Survivors must each be listed in
tests/MUTATION.md with the reason they survive; the script names any that are not, and exits 1 if a goal is missed
or a survivor is unlisted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "diffusion/", "experiments/")  # course_lib/*.py, course_lib/diffusion/, course_lib/experiments/
GOALS = {"core": 0.90, "diffusion/": 0.90, "experiments/": 0.80}
KILLED = {"killed", "timeout", "caught by type check"}
# mutmut's exit-code convention (mutmut.stats.status_by_exit_code), restated to read results without importing it.
STATUS = {0: "survived", 1: "killed", 3: "killed", 5: "no tests", 33: "no tests", 2: "interrupted", 34: "skipped",
          35: "suspicious", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          37: "caught by type check", -11: "segfault", -9: "segfault", None: "not checked"}


def package_of(path: Path) -> str:
    """The package of a file under mutants/course_lib: "core", "diffusion/" or "experiments/"."""
    parts = path.relative_to(ROOT / "mutants" / "course_lib").parts
    return f"{parts[0]}/" if len(parts) > 1 else "core"


def results(mutants: Path) -> dict[str, tuple[str, str, str]]:
    """{mutant name: (package, status, source file)} for every mutant of course_lib."""
    found = {}
    for meta in sorted((mutants / "course_lib").rglob("*.py.meta")):
        source = meta.relative_to(mutants).as_posix().removesuffix(".meta")
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = (package_of(meta), STATUS.get(code, "suspicious"), source)
    return found


def one_line_change(name: str, source: str) -> str:
    """The mutant's change as '-old  +new' (the lines mutmut's diff removes and adds)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=source).splitlines()
    removed = [line[1:].strip() for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++")]
    return f"-{' / '.join(removed)}  +{' / '.join(added)}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every mutant not killed, with its change")
    parser.add_argument("--listed", default=str(ROOT / "tests" / "MUTATION.md"), help="where survivors are explained")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # mutmut reads its files relative to the project root
    found = results(ROOT / "mutants")
    if not found:
        print("No mutmut results in mutants/: run `make mutation` (or `.venv/bin/mutmut run`) first.")
        return 1
    ok = True
    print(f"{'package':<14}{'killed / total':>16}{'score':>9}{'goal':>7}  not killed")
    for package in PACKAGES:
        statuses = Counter(status for pkg, status, _ in found.values() if pkg == package)
        total = sum(statuses.values()) - statuses["skipped"]
        killed = sum(statuses[s] for s in KILLED)
        score = killed / total if total else 1.0
        met = score >= GOALS[package]
        ok &= met
        rest = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()) if s not in KILLED | {"skipped"})
        print(f"{package:<14}{f'{killed} / {total}':>16}{score:>8.1%}{GOALS[package]:>7.0%}  {rest or '-'}"
              f"{'' if met else '   (goal NOT met)'}")
    not_killed = sorted(name for name, (_, status, _) in found.items() if status not in KILLED | {"skipped"})
    listed = Path(args.listed).read_text() if Path(args.listed).exists() else ""
    unlisted = [name for name in not_killed if f"`{name}`" not in listed]
    if args.survivors:
        for name in not_killed:
            print(f"{name}  [{found[name][1]}]  {one_line_change(name, found[name][2])}")
    if unlisted:
        ok = False
        print(f"\n{len(unlisted)} of {len(not_killed)} mutants not killed are not explained in {args.listed}:")
        for name in unlisted:
            print(f"  {name}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
