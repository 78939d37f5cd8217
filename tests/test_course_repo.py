"""One place for the course's repository address: ``course_lib.notebook_tools.DEFAULT_COURSE_REPO``, overridden by
``COURSE_REPO`` where the course runs. The set-up cell of every notebook, its copy in notebooks/CONVENTIONS.md and the
README's Colab badges are copies that ``python -m course_lib.notebook_tools sync`` writes; the last test fails while
any of them differs, or while the address appears anywhere else."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from course_lib import notebook_tools
from course_lib.notebook_tools import DEFAULT_COURSE_REPO, colab_badge_url, course_repo, setup_cell_source

ROOT = Path(__file__).resolve().parents[1]
FORK = "https://github.com/someone/fork-of-the-course"
SKIPPED_DIRS = {".git", ".venv", ".venv-colab", "mutants", "data", "outputs", "test-artifacts", "__pycache__",
                ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "course_lib.egg-info"}


def test_course_repo_is_the_default_unless_the_environment_names_another(monkeypatch):
    monkeypatch.delenv("COURSE_REPO", raising=False)
    assert course_repo() == DEFAULT_COURSE_REPO == "https://github.com/course-authors/faster-diffusion-autoencoders"
    monkeypatch.setenv("COURSE_REPO", f" {FORK}/ ")
    assert course_repo() == FORK
    monkeypatch.setenv("COURSE_REPO", "  ")
    assert course_repo() == DEFAULT_COURSE_REPO
    monkeypatch.setenv("COURSE_REPO", "https://github.com/me/fork-X/")
    assert course_repo() == "https://github.com/me/fork-X"  # only the trailing slash goes


def test_colab_badge_url():
    assert colab_badge_url("00_welcome.ipynb") == (
        "https://colab.research.google.com/github/course-authors/faster-diffusion-autoencoders/blob/main/notebooks/"
        "00_welcome.ipynb"
    )
    assert colab_badge_url("x.ipynb", FORK).startswith("https://colab.research.google.com/github/someone/fork-of")
    for bad in ("https://gitlab.com/a/b", "https://github.com/only-owner", "https://github.com/a/b/tree/main"):
        with pytest.raises(ValueError, match="OWNER/NAME"):
            colab_badge_url("x.ipynb", bad)


def test_setup_cell_clones_course_repo_or_the_default():
    cell = setup_cell_source(FORK)
    assert cell.startswith(notebook_tools.SETUP_MARKER) and not cell.endswith("\n")
    assert f'repo = os.environ.get("COURSE_REPO", "{FORK}")' in cell
    assert DEFAULT_COURSE_REPO in setup_cell_source() and "{repo}" not in setup_cell_source()
    compile(cell, "set-up cell", "exec")
    assert max(len(line) for line in cell.splitlines()) <= 120


def _old_repo(tmp_path: Path) -> Path:
    """A small course folder whose copies point at an older address and carry an older set-up cell."""
    old_cell = "# NBVAL_IGNORE_OUTPUT\n# Set-up: old\nrepo = 'https://github.com/old/place'\nsetup()"
    (tmp_path / "notebooks").mkdir()
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Title é"]},
            {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [{"output_type": "stream",
             "name": "stdout", "text": ["cpu\n"]}], "source": old_cell.splitlines(keepends=True)},
            {"cell_type": "code", "execution_count": 2, "metadata": {}, "outputs": [], "source": ["1 + 1"]},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    (tmp_path / "notebooks" / "00_a.ipynb").write_text(json.dumps(notebook, indent=1))
    badge = "https://colab.research.google.com/github/old/place/blob/dev/notebooks/00_a.ipynb"
    (tmp_path / "README.md").write_text(f"| 00 | [![Open In Colab](https://x/badge.svg)]({badge}) |\nend\n")
    (tmp_path / "notebooks" / "CONVENTIONS.md").write_text(f"before\n```python\n{old_cell}\n```\nafter\n")
    return tmp_path


def test_sync_writes_the_address_and_the_set_up_cell_into_every_copy(tmp_path, capsys):
    root = _old_repo(tmp_path)
    before = json.loads((root / "notebooks" / "00_a.ipynb").read_text())
    assert notebook_tools._main(["sync", str(root)]) == 0
    names = [Path(line.split(": ")[0]).name for line in capsys.readouterr().out.splitlines()]
    assert names == ["00_a.ipynb", "README.md", "CONVENTIONS.md"]

    text = (root / "notebooks" / "00_a.ipynb").read_text()
    after = json.loads(text)
    assert "".join(after["cells"][1]["source"]) == setup_cell_source()
    assert after["cells"][1]["source"][0] == "# NBVAL_IGNORE_OUTPUT\n"  # stored as lines
    for cell in (0, 2):
        assert after["cells"][cell] == before["cells"][cell]
    assert after["cells"][1]["outputs"] == before["cells"][1]["outputs"]  # outputs kept, nothing re-run
    assert after["cells"][1]["execution_count"] == 1
    assert text.endswith("}\n") and "é" in text and '\n "cells"' in text  # indent 1, not escaped, final newline

    assert (root / "README.md").read_text() == (
        f"| 00 | [![Open In Colab](https://x/badge.svg)]({colab_badge_url('00_a.ipynb')}) |\nend\n"
    )
    assert (root / "notebooks" / "CONVENTIONS.md").read_text() == (
        f"before\n```python\n{setup_cell_source()}\n```\nafter\n"
    )
    assert notebook_tools.sync(root) == []  # nothing left to change


def test_sync_to_another_address(tmp_path):
    root = _old_repo(tmp_path)
    changed = notebook_tools.sync(root, FORK)
    assert [path.name for path in changed] == ["00_a.ipynb", "README.md", "CONVENTIONS.md"]
    assert FORK in (root / "notebooks" / "00_a.ipynb").read_text().replace("\\", "")
    assert colab_badge_url("00_a.ipynb", FORK) in (root / "README.md").read_text()
    assert notebook_tools.sync(root, FORK) == []


def test_sync_refuses_a_notebook_without_the_set_up_cell(tmp_path):
    path = tmp_path / "nb.ipynb"
    for cells in ([], [{"cell_type": "code", "source": ["import sys"], "outputs": [], "metadata": {}}]):
        path.write_text(json.dumps({"cells": cells, "metadata": {}}))
        with pytest.raises(ValueError, match="set-up cell"):
            notebook_tools.sync_setup_cell(path)


def test_sync_without_readme_or_conventions(tmp_path):
    root = _old_repo(tmp_path)
    (root / "README.md").unlink()
    (root / "notebooks" / "CONVENTIONS.md").unlink()
    assert [path.name for path in notebook_tools.sync(root)] == ["00_a.ipynb"]


def test_sync_without_a_folder_syncs_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_old_repo(tmp_path))
    assert notebook_tools._main(["sync"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "notebooks/00_a.ipynb: updated", "README.md: updated", "notebooks/CONVENTIONS.md: updated"
    ]


def test_usage():
    assert notebook_tools.USAGE.startswith("usage: python -m course_lib.notebook_tools strip NOTEBOOK...\n")
    assert notebook_tools._main(["sync", "a", "b"]) == 2


# --- the repository itself (not in mutmut's copy, which holds course_lib and tests/ only) -------------------------


@pytest.fixture
def repository():
    if not (ROOT / "notebooks").is_dir() or not (ROOT / "README.md").exists():
        pytest.skip("needs the whole repository (notebooks/, README.md)")
    return ROOT


def test_every_copy_is_in_sync_with_the_one_place(repository, tmp_path):
    copy = tmp_path / "course"
    shutil.copytree(repository / "notebooks", copy / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(repository / "README.md", copy / "README.md")
    changed = notebook_tools.sync(copy)
    assert not changed, (
        f"{[str(path.relative_to(copy)) for path in changed]} differ from course_lib/notebook_tools.py: run "
        "`.venv/bin/python -m course_lib.notebook_tools sync`"
    )
    readme = (repository / "README.md").read_text()
    notebooks = sorted(path.name for path in (repository / "notebooks").glob("*.ipynb"))
    badges = re.findall(r"https://colab\.research\.google\.com/github/\S+?\.ipynb", readme)
    assert badges == [colab_badge_url(name) for name in notebooks], "one Colab badge per notebook, in order"
    conventions = (repository / "notebooks" / "CONVENTIONS.md").read_text()
    assert f"```python\n{setup_cell_source()}\n```" in conventions


def test_the_address_is_written_nowhere_else(repository):
    synced = {repository / "README.md", repository / "notebooks" / "CONVENTIONS.md",
              repository / "course_lib" / "notebook_tools.py", Path(__file__).resolve()}  # fmt: skip
    owner_and_name = DEFAULT_COURSE_REPO.removeprefix("https://github.com/")
    found = []
    for folder, dirs, files in os.walk(repository):
        dirs[:] = [name for name in dirs if name not in SKIPPED_DIRS]
        for name in files:
            _check_file(Path(folder) / name, repository, synced, owner_and_name, found)
    assert not found, f"the repository address is also written in {found}: use notebook_tools.course_repo()"


def _check_file(path: Path, repository: Path, synced: set[Path], owner_and_name: str, found: list[str]) -> None:
    if path in synced:
        return
    if path.suffix == ".ipynb" and path.parent == repository / "notebooks":
        return  # the set-up cells: checked above
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return
    if owner_and_name in text:
        found.append(str(path.relative_to(repository)))
