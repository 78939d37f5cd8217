"""The set-up cell on Colab installs course_lib and changes none of Colab's own packages.

Colab's versions are in tests/colab_pins.txt (with their source), once. Offline, the tests check that every
runtime requirement of pyproject.toml (and requires-python) is met by those versions, and that the set-up cell's
pip command installs the course alone (``--no-deps``, no upgrade): so pip has nothing to upgrade or downgrade.
Where PyPI answers, pip's resolver confirms both for Python 3.13 (skipped offline).
Also here: what ``setup()`` does on Colab (MNIST in full mode, timed; missing requirements named).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import types
import urllib.request
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from course_lib import config, notebook_tools

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PINS = Path(__file__).resolve().parent / "colab_pins.txt"
COURSE = "/content/course"  # where the set-up cell clones the course on Colab


def colab_pins() -> tuple[str, dict[str, str]]:
    """Colab's Python version and its packages' versions (canonical name -> version), from colab_pins.txt."""
    text = PINS.read_text()
    python = re.search(r"^# Python: (\d+\.\d+)$", text, re.MULTILINE).group(1)
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return python, pins


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pip_command(cell: str) -> list[str]:
    """The argument list of the set-up cell's ``subprocess.run([sys.executable, "-m", "pip", ...])``."""
    calls = [
        node.args[0] for node in ast.walk(ast.parse(cell))
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.List)
        and any(isinstance(e, ast.Constant) and e.value == "pip" for e in node.args[0].elts)
    ]  # fmt: skip
    assert len(calls) == 1, f"expected one pip call in the set-up cell, found {len(calls)}"
    elements = calls[0].elts
    assert ast.unparse(elements[0]) == "sys.executable", "pip must run in the kernel's own Python"
    return [element.value for element in elements[1:]]


def test_pins_file_names_python_and_the_widget_stack():
    python, pins = colab_pins()
    assert python == "3.13"
    assert {"torch", "ipywidgets", "widgetsnbextension", "notebook", "ipykernel", "jupyter-client"} <= set(pins)
    assert all(re.fullmatch(r"\d+(\.\d+)+", version) for version in pins.values()), pins


def test_colab_meets_every_runtime_requirement():
    python, pins = colab_pins()
    project = _project()
    assert SpecifierSet(project["requires-python"]).contains(python), project["requires-python"]
    environment = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
                   "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython"}
    unmet = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{text} (Colab has {version or 'nothing'})")
    assert not unmet, "Colab's runtime does not meet: " + ", ".join(unmet)


def _assert_installs_the_course_alone(cell: str) -> None:
    args = _pip_command(cell)
    assert args[:2] == ["-m", "pip"] and args[2] == "install", args
    options = [a for a in args[3:] if a.startswith("-")]
    targets = [a for a in args[3:] if not a.startswith("-")]
    assert "--no-deps" in options, args
    assert set(options) <= {"-q", "--no-deps", "-e"}, f"options that may change installed packages: {options}"
    assert targets == [COURSE] and args[args.index(COURSE) - 1] == "-e", args


def test_setup_cell_installs_the_course_alone():
    """``--no-deps``: pip installs course_lib and nothing else, so it upgrades and downgrades nothing."""
    _assert_installs_the_course_alone(notebook_tools.setup_cell_source())


def test_the_check_rejects_installs_that_may_change_packages():
    good = notebook_tools.setup_cell_source()
    bad = [good.replace('"--no-deps", ', ""), good.replace('"--no-deps"', '"--no-deps", "-U"'),
           good.replace('"/content/course"], check', '"/content/course", "ipywidgets"], check'),
           good.replace('"-e", "/content/course"', '"/content/course"')]
    for cell in bad:
        assert cell != good
        with pytest.raises(AssertionError):
            _assert_installs_the_course_alone(cell)


# --- pip's resolver, for Python 3.13 (needs PyPI) ---------------------------------------------------------------


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def _dry_run(args: list[str], tmp_path: Path) -> dict[str, str]:
    """What ``pip install ARGS`` would install into an empty folder on Colab's Python: name -> version."""
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable: pip's resolver check needs it (the offline checks above still ran)")
    python, _ = colab_pins()
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
               "--target", str(tmp_path / "target"), "--python-version", python, "--only-binary=:all:", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"pip could not resolve {args}:\n{result.stderr[-3000:]}"
    installs = json.loads(report.read_text())["install"]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}


def test_pip_resolves_the_set_up_cell_to_course_lib_alone(tmp_path):
    args = _pip_command(notebook_tools.setup_cell_source())[3:]
    args = [str(ROOT) if arg == COURSE else arg for arg in args if arg != "-q"]
    assert _dry_run(args, tmp_path) == {"course-lib": _project()["version"]}


def test_pip_resolves_the_runtime_requirements_with_every_colab_pin_held(tmp_path):
    """Even a plain install (with dependencies) would keep Colab's versions: constrained to them, pip finds a
    solution for course_lib's runtime requirements on Python 3.13."""
    _, pins = colab_pins()
    resolved = _dry_run(["-c", str(PINS), *_project()["dependencies"]], tmp_path)
    changed = {name: (pins[name], resolved[name]) for name in pins if name in resolved and resolved[name] != pins[name]}
    assert not changed, f"pinned packages pip would change (Colab's, pip's): {changed}"
    assert {canonicalize_name(Requirement(r).name) for r in _project()["dependencies"]} <= set(resolved)


# --- setup() on Colab ----------------------------------------------------------------------------------------------


@pytest.fixture
def colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))


def _fake_mnist(calls):
    from course_lib.data import Dataset

    def load(name, root=None, download=True):
        calls.append((name, Path(root), download))
        return Dataset(name, torch.zeros(6, 1, 28, 28), torch.zeros(6), torch.zeros(2, 1, 28, 28), torch.zeros(2), "x")

    return load


@pytest.mark.parametrize("mode", ["full", "reference", "fast"])
def test_setup_on_colab_downloads_mnist_in_full_mode_and_says_how_long(colab, monkeypatch, capsys, tmp_path, mode):

    calls = []
    monkeypatch.setattr(notebook_tools, "load_dataset", _fake_mnist(calls))
    monkeypatch.setattr(config, "MODE", mode)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert notebook_tools.on_colab()
    notebook_tools.setup(prefer="cpu")
    out = capsys.readouterr().out
    if mode != "full":
        assert calls == [] and "MNIST" not in out
        return
    assert calls == [("mnist", tmp_path, True)]
    lines = out.splitlines()
    assert lines[2] == (f"Full mode uses full MNIST: downloading it with torchvision into {tmp_path} "
                        "(once per runtime) ...")
    assert re.fullmatch(r"MNIST downloaded in \d+\.\d s: 6 train \+ 2 test images", lines[3]), lines[3]


def test_setup_off_colab_downloads_nothing(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(notebook_tools, "fetch_mnist", lambda: pytest.fail("fetch_mnist called off Colab"))
    monkeypatch.setattr(config, "MODE", "full")
    assert not notebook_tools.on_colab()
    notebook_tools.setup(prefer="cpu")
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_fetch_mnist_says_when_it_only_loads(monkeypatch, capsys, tmp_path):

    calls = []
    monkeypatch.setattr(notebook_tools, "load_dataset", _fake_mnist(calls))
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"")
    seconds = notebook_tools.fetch_mnist(tmp_path)
    assert 0 <= seconds < 60 and calls == [("mnist", tmp_path, True)]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and re.fullmatch(r"MNIST loaded from disk in \d+\.\d s: 6 train \+ 2 test images", out[0])
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").unlink()  # an empty raw folder: download again
    notebook_tools.fetch_mnist(str(tmp_path))
    assert capsys.readouterr().out.startswith("Full mode uses full MNIST: downloading")


def test_unmet_requirements_names_missing_packages_only(monkeypatch):
    assert notebook_tools.unmet_requirements() == []  # this environment has everything
    assert notebook_tools.unmet_requirements("no-such-distribution-here") == []
    requires = ["torch>=2.2", "no-such-package-xyz>=1.0", "other_missing_pkg; python_version >= '3'",
                'no-such-test-tool>=1; extra == "test"']
    monkeypatch.setattr(notebook_tools.importlib.metadata, "requires", lambda name: requires)
    assert notebook_tools.unmet_requirements() == requires[1:3]
    monkeypatch.setattr(notebook_tools.importlib.metadata, "requires", lambda name: None)
    assert notebook_tools.unmet_requirements() == []


def test_setup_names_missing_requirements_and_how_to_install_them(monkeypatch, capsys):
    monkeypatch.setattr(notebook_tools, "unmet_requirements", lambda: ["mlxtend>=0.22", "tqdm>=4.64"])
    notebook_tools.setup(prefer="cpu")
    line = capsys.readouterr().out.splitlines()[2]
    assert line == ("course_lib needs mlxtend>=0.22, tqdm>=4.64, not installed here: `pip install 'mlxtend>=0.22' "
                    "'tqdm>=4.64'` (pip may then change packages this runtime already has)")
