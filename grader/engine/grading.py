"""Grade exercises in-process, and sum up each one: tests passed of total, and its status."""

import io
import os
import re
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from .. import specs
from ..learner import workspace
from ..learner.curriculum import Exercise
from ..errors import KitError
from ..i18n import say
from ..paths import GOLDENS, TOKENIZER


@dataclass
class Score:
    exercise: Exercise
    passed: int
    total: int  # tests that ran: passed and failed, not skipped
    skipped: int
    status: str  # "passed", "failing" or "not started"
    failures: list = field(default_factory=list)  # grader.engine.results.Result, in order

    @property
    def done(self) -> bool:
        return self.status == "passed"


def test_name(result) -> str:
    """'test_rms_norm[tiny-llama3]' from the node id."""
    return result.nodeid.split("::", 1)[-1]


def summary(result, lang: str | None = None) -> str:
    """A failure in one line: the known mistake it was recognised as, else the message's first line, with the line
    after it when the first is only a heading that ends in a colon."""
    if result.mistake:
        return say("checking.known_mistake", lang=lang) + specs.mistake(result.mistake).message(lang)
    lines = [line.strip() for line in result.message.strip().splitlines() if line.strip()] or [result.status]
    if lines[0].endswith((":", "：")):
        return f"{lines[0]} {lines[1]}" if len(lines) > 1 else lines[0].rstrip(":：")
    return lines[0]


def score(exercise: Exercise, results: list) -> Score:
    mine = [r for r in results if r.exercise == exercise.module]
    ran = [r for r in mine if r.outcome != "skipped"]
    failures = [r for r in ran if r.outcome != "passed"]
    passed = len(ran) - len(failures)
    if ran and not failures:
        status = "passed"
    elif passed or any(r.status != "not started" for r in failures):
        status = "failing"
    else:
        status = "not started"
    return Score(exercise, passed, len(ran), len(mine) - len(ran), status, failures)


def run(exercises: list[Exercise] | None = None, impl: str = "exercises", root: Path | None = None,
        lang: str | None = None, device: str | None = None) -> list:
    """The graded tests' results, of these exercises (all when None), on root/exercises (the learner's folder by
    default) with impl under test, on device (None: LLAMA3_KIT_DEVICE, else the CPU). Every way this cannot run is a
    KitError."""
    from . import results

    folder = (root or workspace.root()) / "exercises"
    _check_fixtures(lang)
    if not folder.is_dir():
        raise KitError(say("grading.no_exercises_folder", folder=folder.parent, lang=lang))
    targets = [folder] if exercises is None else [folder / e.tests for e in exercises]
    for t in targets:
        if not t.exists():
            raise KitError(say("grading.tests_missing", path=t, name=t.name, lang=lang))
    out = io.StringIO()
    with first_on_path(folder.parent), _language(lang), redirect_stdout(out), redirect_stderr(out):
        code, found = results.run([*map(str, targets), "-p", "grader.engine.plugin", "--impl", impl,
                                   *(["--device", device] if device else []), "--rootdir", str(folder.parent)],
                                  quiet=False)
    _check_exit(code, out.getvalue(), folder, lang)
    return found


def _check_fixtures(lang: str | None) -> None:
    if not GOLDENS.is_dir() or not TOKENIZER.is_file():
        raise KitError(say("grading.no_fixtures", folder=GOLDENS.parent, lang=lang))


def _check_exit(code: int, output: str, folder: Path, lang: str | None) -> None:
    """pytest's exit code: 0 and 1 are grades; the others become one line that says what to do."""
    if code in (0, 1):
        return
    if "KeyboardInterrupt" in output:
        raise KeyboardInterrupt
    if code == 5:
        raise KitError(say("grading.nothing_collected", folder=folder, lang=lang))
    usage = re.search(r"UsageError: (.+)$|^ERROR: (.+)$", output, re.MULTILINE)  # e.g. a bad LLAMA3_CHECKPOINT
    if usage:
        raise KitError((usage.group(1) or usage.group(2)).strip())
    error = re.search(r"^E   (.+)$", output, re.MULTILINE)
    where = re.search(r"ERROR collecting (\S+)", output)
    detail = f"{where.group(1)}: " if where else ""
    detail += error.group(1).strip() if error else f"pytest exit code {code}"
    raise KitError(say("grading.could_not_run", detail=detail, lang=lang))


@contextmanager
def _language(lang: str | None):
    """The graded tests' messages in lang too: the plugin reads LLAMA3_KIT_LANG."""
    before = os.environ.get("LLAMA3_KIT_LANG")
    if lang:
        os.environ["LLAMA3_KIT_LANG"] = lang
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LLAMA3_KIT_LANG", None)
        else:
            os.environ["LLAMA3_KIT_LANG"] = before


@contextmanager
def first_on_path(root: Path):
    """Import the package exercises from root during the block (the kit's tests and notebooks grade copies);
    afterwards sys.path is as it was and no module of that copy stays imported."""
    saved = list(sys.path)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path[:] = saved
        for name in [n for n in sys.modules if n == "exercises" or n.startswith("exercises.")]:
            del sys.modules[name]
