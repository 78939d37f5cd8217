"""Small helpers for the notebooks: the shared set-up, showing course_lib's source, stripping widget state.

``python -m course_lib.notebook_tools strip NOTEBOOK...`` removes stored widget state from notebooks.
"""

from __future__ import annotations

import inspect
import json
import platform
import sys
from pathlib import Path

import torch

from course_lib import config
from course_lib.config import pick_device, seed_everything

COURSE_REPO = "https://github.com/course-authors/faster-diffusion-autoencoders"
"""Where the course lives; the Colab set-up cell clones it from here."""


def setup(seed: int = 0, prefer: str | None = None) -> torch.device:
    """Seed everything, pick the device and print what a learner needs to know about the run."""
    seed_everything(seed)
    device = pick_device(prefer)
    print(f"Python {platform.python_version()}, PyTorch {torch.__version__}, device: {device}")
    print(config.describe())
    return device


def show_source(obj: object) -> None:
    """Display the source code of a course_lib function or class (so notebooks never copy it)."""
    source = inspect.getsource(obj)
    location = f"{inspect.getmodule(obj).__name__}"
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"`{location}`\n```python\n{source}```"))
    except ImportError:
        print(f"# {location}\n{source}")


def strip_widget_state(path: Path) -> bool:
    """Remove ``metadata.widgets`` from a notebook file; return True if anything changed."""
    notebook = json.loads(path.read_text())
    if "widgets" not in notebook.get("metadata", {}):
        return False
    del notebook["metadata"]["widgets"]
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return True


def _main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "strip":
        print("usage: python -m course_lib.notebook_tools strip NOTEBOOK...", file=sys.stderr)
        return 2
    for name in argv[1:]:
        changed = strip_widget_state(Path(name))
        print(f"{name}: {'widget state removed' if changed else 'no widget state'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
