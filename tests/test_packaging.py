"""environment.yml (conda) and pyproject.toml (pip) must name the same packages."""

import re
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_and_pyproject_name_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    conda_names = set()
    section = None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^\w", line):
            section = line.split(":")[0]
        item = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if section == "dependencies" and item and item.group(1) not in {"python", "pip"}:
            name = _name(item.group(1))
            conda_names.add(CONDA_NAMES.get(name, name))
    assert conda_names == pip_names, (
        f"only in environment.yml: {conda_names - pip_names}; only in pyproject: {pip_names - conda_names}"
    )
