"""The kit's Python passes ruff with the rules in pyproject.toml (pycodestyle and pyflakes, 120 columns): no line too
long, no unused import, no undefined name, anywhere in the repository."""

import subprocess
import sys

import pytest

from grader.paths import ROOT


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="ruff comes with the dev extra: pip install -e \".[dev]\"")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
