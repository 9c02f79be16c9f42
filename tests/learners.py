"""Learner trees for the kit's own tests: a copy of the stubs and graded tests in a temporary folder, with
chosen modules replaced, graded in a subprocess exactly as a learner's `pytest exercises/` would be."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from grader.paths import ROOT

SOLUTIONS = ROOT / "solutions"
MODULES = sorted(p.stem for p in SOLUTIONS.glob("ex*.py"))


def tree(tmp_path: Path, planted: dict[str, str] | None = None) -> Path:
    """tmp_path/kit/exercises: the pristine stubs and graded tests, with planted[module] = source replacing some."""
    root = tmp_path / "kit"
    shutil.copytree(ROOT / "exercises", root / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
    for module, source in (planted or {}).items():
        (root / "exercises" / f"{module}.py").write_text(source)
    return root


def solution(module: str) -> str:
    return (SOLUTIONS / f"{module}.py").read_text()


def with_override(module: str, names: dict[str, str]) -> str:
    """The reference module, with names rebound at the end: names[name] = an expression."""
    lines = [f"{name} = {expr}" for name, expr in names.items()]
    return solution(module) + "\n\n# planted by the kit's tests\nimport grader.engine.mistakes  # noqa: E402\n" + "\n".join(lines) + "\n"


def spoiled(module: str, kind: str) -> str:
    """The reference module with every function and class replaced by a bad learner of this kind (see bad_learners.py)."""
    return solution(module) + f"\n\nimport bad_learners  # noqa: E402\nbad_learners.spoil(globals(), {kind!r})\n"


def grade(root: Path, *args: str, env: dict[str, str] | None = None) -> list[dict]:
    """Grade the tree like a learner's pytest run; one dict per graded test (nodeid, exercise, outcome, status, message)."""
    env_path = f"{root}:{Path(__file__).parent}"
    out = subprocess.run(
        [sys.executable, "-m", "grader.engine.results", str(root / "exercises"), "-p", "grader.engine.plugin", "--rootdir", str(root), *args],
        cwd=root, capture_output=True, text=True, timeout=1200, env={**_env(), "PYTHONPATH": env_path, **(env or {})},
    )
    if out.returncode != 0:
        raise AssertionError(f"grading crashed ({out.returncode}):\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _env() -> dict:
    import os
    return {k: v for k, v in os.environ.items() if k not in ("LLAMA3_CHECKPOINT", "LLAMA3_KIT_IMPL", "LLAMA3_KIT_LANG")}


def by_exercise(results: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for r in results:
        grouped.setdefault(r["exercise"], []).append(r)
    return grouped


def dedent(source: str) -> str:
    return textwrap.dedent(source).lstrip()
