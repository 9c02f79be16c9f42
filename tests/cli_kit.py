"""Helpers for the CLI tests: a learner's kit folder in tmp_path, and llama3-grader run on it, in-process or in a
subprocess. LLAMA3_KIT_ROOT points every run at the temporary folder, so the real exercises/ and progress file are
never touched."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import cli
from learners import solution, tree

UNSET = ("LLAMA3_CHECKPOINT", "LLAMA3_KIT_IMPL", "LLAMA3_KIT_LANG", "LLAMA3_KIT_ROOT")


def kit(tmp_path: Path, solved: tuple[str, ...] = ()) -> Path:
    """A copy of the stubs and graded tests, with the reference planted for the modules in solved."""
    return tree(tmp_path, {m: solution(m) for m in solved})


def env(root: Path, **extra: str) -> dict:
    """The person's own choices unset; the kit's cache empty, beside the kit folder (no fetched trained model)."""
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**clean, "LLAMA3_KIT_ROOT": str(root), "LLAMA3_KIT_CACHE": str(root.parent / "kit-cache"),
            "PYTHONUNBUFFERED": "1", **extra}


def command(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from grader.cli import main; sys.argv[0] = 'llama3-grader'; main()",
            *args]


def run(root: Path, *args: str, timeout: float = 600, **extra_env: str) -> subprocess.CompletedProcess:
    """llama3-grader ARGS in a subprocess (stdout is a pipe, so output is plain text)."""
    return subprocess.run(command(*args), cwd=root, env=env(root, **extra_env), capture_output=True, text=True,
                          timeout=timeout)


def call(*args: str) -> int:
    """llama3-grader ARGS in this process; its exit code. Use with the `root` fixture and capsys."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(args))
    return exit_.value.code or 0
