"""Where the learner's files are: the kit's folder, or LLAMA3_KIT_ROOT when set (the kit's own tests point it at a
temporary copy, so they never touch your exercises/ or your progress file)."""

import os
from pathlib import Path

from ..paths import ROOT


def root() -> Path:
    return Path(os.environ.get("LLAMA3_KIT_ROOT") or ROOT)


def exercises() -> Path:
    return root() / "exercises"


def history() -> Path:
    return root() / ".llama3-progress.json"


def backups() -> Path:
    return root() / ".llama3-backups"


def notebooks() -> Path:
    return root() / "notebooks"


def show(path: Path) -> str:
    """path relative to the root when it is inside it: what a learner types."""
    path = Path(path).resolve()
    base = root().resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
