"""What runs where: pyproject.toml's runtime dependencies are what the notebooks and course_lib import, the `lab`
extra is JupyterLab, the `test` extra the test tools; environment.yml (conda) lists all of them, and the Makefile
installs the extras its targets need."""

import ast
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
RUNTIME = {"torch", "torchvision", "numpy", "matplotlib", "tqdm", "ipywidgets", "mlxtend"}
LAB = {"jupyterlab"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements() -> dict[str, dict[str, str]]:
    """pyproject.toml's requirements by group ("runtime", "lab", "test"): name -> requirement."""
    project = _project()
    groups = {"runtime": project["dependencies"], **project["optional-dependencies"]}
    return {group: {_name(r): r.replace(" ", "") for r in reqs} for group, reqs in groups.items()}


def test_runtime_lab_and_test_hold_what_runs_where():
    groups = _requirements()
    assert set(groups) == {"runtime", "lab", "test"}
    assert set(groups["runtime"]) == RUNTIME
    assert set(groups["lab"]) == LAB
    assert {"nbval", "pytest", "playwright", "ruff", "packaging", "mutmut"} <= set(groups["test"])
    assert not set(groups["test"]) & (RUNTIME | LAB), "a test tool is also a runtime or lab requirement"


def test_environment_yml_lists_every_requirement_of_pyproject():
    pip_requirements = {}
    for group in _requirements().values():
        pip_requirements |= group
    conda_requirements = {}
    section = None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^\w", line):
            section = line.split(":")[0]
        # conda packages ("  - name"), and those only PyPI has, in the pip list ("      - name"); not "-e ."
        item = re.match(r"^  (?:    )?- ([A-Za-z0-9_][A-Za-z0-9_.\-]*)(\S*)", line)
        if section == "dependencies" and item and item.group(1) not in {"python", "pip"}:
            name = _name(item.group(1))
            conda_requirements[CONDA_NAMES.get(name, name)] = CONDA_NAMES.get(name, name) + item.group(2)
    assert set(conda_requirements) == set(pip_requirements), (
        f"only in environment.yml: {set(conda_requirements) - set(pip_requirements)}; "
        f"only in pyproject: {set(pip_requirements) - set(conda_requirements)}"
    )
    assert conda_requirements == pip_requirements, "the two files ask for different versions"


def _imported_modules() -> set[str]:
    """Top-level modules imported by course_lib and by the notebooks' code cells."""
    sources = [path.read_text() for path in (ROOT / "course_lib").rglob("*.py")]
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":  # IPython magics and shell lines are not Python
                lines = "".join(cell["source"]).splitlines()
                sources.append("\n".join(line for line in lines if not line.lstrip().startswith(("%", "!"))))
    modules = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"course_lib"}


def _closure(names: set[str]) -> set[str]:
    """``names`` and every distribution they require, as installed here (extras not followed)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_name(requirement.name))
    return seen


def test_runtime_requirements_are_what_the_notebooks_and_course_lib_import():
    distributions = importlib.metadata.packages_distributions()
    imported = {}
    for module in _imported_modules():
        assert module in distributions, f"{module} is imported, but no installed distribution provides it"
        imported[module] = _name(distributions[module][0])
    runtime = set(_requirements()["runtime"])
    unused = runtime - set(imported.values())
    assert not unused, f"runtime requirements nothing imports: {unused}"
    # PIL (pillow) and IPython come with matplotlib, torchvision and ipywidgets: allowed, not required, to be named
    undeclared = {module for module, dist in imported.items() if dist not in _closure(runtime)}
    assert not undeclared, f"imported but not provided by the runtime requirements: {undeclared}"


def test_make_lab_installs_the_lab_extra_and_make_test_adds_the_test_extra():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^\$\(VENV\)/\.installed:.*\n\t(.*)", makefile, re.MULTILINE).group(1)
    assert "pip install -e '.[lab]'" in recipe, recipe
    recipe = re.search(r"^\$\(VENV\)/\.installed-test:.*\n\t(.*)", makefile, re.MULTILINE).group(1)
    assert "pip install -e '.[lab,test]'" in recipe, recipe
