"""Small helpers for the notebooks: the shared set-up, showing course_lib's source, stripping widget state, and the
one place the course's repository address is written.

``python -m course_lib.notebook_tools strip NOTEBOOK...`` removes stored widget state from notebooks.
``python -m course_lib.notebook_tools sync [ROOT]`` writes the set-up cell (with :data:`DEFAULT_COURSE_REPO`) into
every notebook and notebooks/CONVENTIONS.md, and the Colab badges into README.md.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

from course_lib import config
from course_lib.config import pick_device, seed_everything
from course_lib.data import load_dataset

DEFAULT_COURSE_REPO = "https://github.com/course-authors/faster-diffusion-autoencoders"
"""The course's repository, written here only: ``sync`` copies it into the set-up cells and the README's badges,
and a test fails while any copy differs. ``COURSE_REPO`` in the environment overrides it where the course runs."""

BRANCH = "main"
"""The branch the Colab badges open."""

SETUP_MARKER = "# NBVAL_IGNORE_OUTPUT\n# Set-up:"
"""How every notebook's set-up cell (its first code cell) begins."""

SETUP_CELL = """# NBVAL_IGNORE_OUTPUT
# Set-up: on Colab, fetch the course and install course_lib alone (--no-deps: Colab's PyTorch, ipywidgets 7.7 and
# the rest stay as they are). setup() picks the device and, on Colab in full mode, downloads MNIST (and times it).
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    if not os.path.exists("/content/course"):
        repo = os.environ.get("COURSE_REPO", "{repo}")
        subprocess.run(["git", "clone", "--depth", "1", repo, "/content/course"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", "/content/course"], check=True)
    sys.path.insert(0, "/content/course")
    os.chdir("/content/course/notebooks")

from course_lib.notebook_tools import setup

device = setup(seed=0)"""

_BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/()\s]+/[^/()\s]+/blob/[^/()\s]+/notebooks/")


def course_repo() -> str:
    """The repository the course is cloned from: ``COURSE_REPO`` if set (a fork, a mirror), else the default."""
    return os.environ.get("COURSE_REPO", "").strip().rstrip("/") or DEFAULT_COURSE_REPO


def setup_cell_source(repo: str = DEFAULT_COURSE_REPO) -> str:
    """The set-up cell every notebook starts with, cloning ``repo`` unless ``COURSE_REPO`` says otherwise."""
    return SETUP_CELL.replace("{repo}", repo)


def colab_badge_url(notebook: str, repo: str = DEFAULT_COURSE_REPO) -> str:
    """The address that opens ``notebooks/<notebook>`` of the GitHub repository ``repo`` in Colab."""
    prefix = "https://github.com/"
    if not repo.startswith(prefix) or repo.count("/") != 4:
        raise ValueError(f"Colab opens notebooks from GitHub: expected {prefix}OWNER/NAME, got {repo!r}")
    return f"https://colab.research.google.com/github/{repo[len(prefix):]}/blob/{BRANCH}/notebooks/{notebook}"


def on_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def setup(seed: int = 0, prefer: str | None = None) -> torch.device:
    """Seed everything, pick the device and print what a learner needs to know about the run.

    On Colab in full mode, MNIST is downloaded here, once, and the time it took is printed."""
    seed_everything(seed)
    device = pick_device(prefer)
    print(f"Python {platform.python_version()}, PyTorch {torch.__version__}, device: {device}")
    print(config.describe())
    missing = unmet_requirements()
    if missing:
        wanted = " ".join(f"'{requirement}'" for requirement in missing)
        print(f"course_lib needs {', '.join(missing)}, not installed here: `pip install {wanted}` "
              "(pip may then change packages this runtime already has)")
    if on_colab() and config.MODE == "full":
        fetch_mnist()
    return device


def unmet_requirements(distribution: str = "course_lib") -> list[str]:
    """The runtime requirements of ``distribution`` that no installed package provides (extras not counted;
    [] where ``distribution`` is not installed)."""
    try:
        requirements = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    missing = []
    for requirement in requirements:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def fetch_mnist(root: str | Path | None = None) -> float:
    """Get full MNIST with torchvision into ``root`` (the data folder by default), say whether it was downloaded
    and how long it took, and return the seconds."""
    root = Path(root) if root is not None else config.data_dir()
    present = (root / "MNIST" / "raw").is_dir() and any((root / "MNIST" / "raw").iterdir())
    if not present:
        print(f"Full mode uses full MNIST: downloading it with torchvision into {root} (once per runtime) ...")
    start = time.perf_counter()
    data = load_dataset("mnist", root=root)
    seconds = time.perf_counter() - start
    verb = "loaded from disk" if present else "downloaded"
    print(f"MNIST {verb} in {seconds:.1f} s: {len(data.train_images):,} train + {len(data.test_images):,} test images")
    return seconds


def show_source(obj: object) -> None:
    """Display the source code of a course_lib function or class (so notebooks never copy it)."""
    source = inspect.getsource(obj)
    location = f"{inspect.getmodule(obj).__name__}"
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"`{location}`\n```python\n{source}```"))
    except ImportError:
        print(f"# {location}\n{source}")


def _write_notebook(path: Path, notebook: dict) -> None:
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def strip_widget_state(path: Path) -> bool:
    """Remove ``metadata.widgets`` from a notebook file; return True if anything changed."""
    notebook = json.loads(path.read_text())
    if "widgets" not in notebook.get("metadata", {}):
        return False
    del notebook["metadata"]["widgets"]
    _write_notebook(path, notebook)
    return True


def setup_cell(notebook: dict) -> dict:
    """The notebook's set-up cell: its first code cell, which must begin with :data:`SETUP_MARKER`."""
    cell = next((c for c in notebook["cells"] if c["cell_type"] == "code"), None)
    if cell is None or not "".join(cell["source"]).startswith(SETUP_MARKER):
        raise ValueError(f"the first code cell is not the set-up cell (it must begin with {SETUP_MARKER!r})")
    return cell


def sync_setup_cell(path: Path, repo: str = DEFAULT_COURSE_REPO) -> bool:
    """Write :func:`setup_cell_source` into the notebook's set-up cell (outputs kept); True if it changed."""
    notebook = json.loads(path.read_text())
    cell = setup_cell(notebook)
    source = setup_cell_source(repo)
    if "".join(cell["source"]) == source:
        return False
    cell["source"] = source.splitlines(keepends=True)  # as Jupyter stores it: lines, the last without "\n"
    _write_notebook(path, notebook)
    return True


def sync_text(path: Path, repo: str = DEFAULT_COURSE_REPO) -> bool:
    """In a Markdown file, point every Colab badge at ``repo`` and make a fenced copy of the set-up cell (the
    ```python block that begins with :data:`SETUP_MARKER`) match it; True if the file changed."""
    text = path.read_text()
    prefix = colab_badge_url("", repo)
    new = _BADGE.sub(prefix, text)
    block = re.compile(r"(```python\n)" + re.escape(SETUP_MARKER) + r".*?(```)", re.DOTALL)
    new = block.sub(lambda m: m.group(1) + setup_cell_source(repo) + "\n" + m.group(2), new)
    if new == text:
        return False
    path.write_text(new)
    return True


def sync(root: Path, repo: str = DEFAULT_COURSE_REPO) -> list[Path]:
    """Copy ``repo`` and the set-up cell into every notebook, README.md and notebooks/CONVENTIONS.md under
    ``root``; return the files that changed."""
    changed = [path for path in sorted((root / "notebooks").glob("*.ipynb")) if sync_setup_cell(path, repo)]
    for path in (root / "README.md", root / "notebooks" / "CONVENTIONS.md"):
        if path.exists() and sync_text(path, repo):
            changed.append(path)
    return changed


USAGE = """usage: python -m course_lib.notebook_tools strip NOTEBOOK...
       python -m course_lib.notebook_tools sync [ROOT]"""


def _main(argv: list[str]) -> int:
    if argv[:1] == ["sync"] and len(argv) <= 2:
        root = Path(argv[1]) if len(argv) == 2 else Path(".")
        for path in sync(root):
            print(f"{path}: updated")
        return 0
    if len(argv) < 2 or argv[0] != "strip":
        print(USAGE, file=sys.stderr)
        return 2
    for name in argv[1:]:
        changed = strip_widget_state(Path(name))
        print(f"{name}: {'widget state removed' if changed else 'no widget state'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
