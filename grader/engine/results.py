"""Run the graded tests in-process and collect one result per test: the scoreboard's and the kit's own view."""

import io
import json
import re
import sys
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass

import pytest

from ..paths import ROOT

_EXERCISE = re.compile(r"test_(ex\d\d_\w+)\.py")


@dataclass
class Result:
    nodeid: str
    exercise: str  # e.g. "ex04_rms_norm"
    outcome: str  # "passed", "failed" or "skipped"
    status: str  # "passed", "failing", "not started" or "skipped"
    message: str
    seconds: float
    mistake: str | None = None  # the id of the named mistake the failure was recognised as


class Collector:
    """A pytest plugin that keeps each test's outcome, status and message."""

    def __init__(self):
        self.results: dict[str, Result] = {}

    def pytest_runtest_logreport(self, report):
        m = _EXERCISE.search(report.nodeid)
        if m is None or (report.when != "call" and report.passed):
            return
        if report.nodeid in self.results and self.results[report.nodeid].outcome != "passed":
            return  # keep the first failure (setup before call, call before teardown)
        properties = dict(report.user_properties)
        status = properties.get("status") or {"passed": "passed", "skipped": "skipped"}.get(report.outcome, "failing")
        skip_reason = report.longrepr[2] if report.skipped and isinstance(report.longrepr, tuple) else ""
        message = report.longreprtext if report.failed else skip_reason
        self.results[report.nodeid] = Result(report.nodeid, m.group(1), report.outcome, status, message,
                                             report.duration, properties.get("mistake"))


def run(args: list[str] | None = None, quiet: bool = True) -> tuple[int, list[Result]]:
    """pytest.main on the graded tests (exercises/ unless args name others); returns (exit code, results)."""
    for name in [n for n in sys.modules if n == "exercises" or n.startswith("exercises.")]:
        del sys.modules[name]  # grade the files as they are now
    collector = Collector()
    argv = [*(args or [str(ROOT / "exercises")]), "-q", "-p", "no:cacheprovider"]
    if not any(a.startswith("--rootdir") for a in argv):
        argv += ["--rootdir", str(ROOT)]
    if quiet:
        with redirect_stdout(io.StringIO()):
            code = pytest.main(argv, plugins=[collector])
    else:
        code = pytest.main(argv, plugins=[collector])
    return int(code), list(collector.results.values())


def main() -> None:
    """python -m grader.engine.results [pytest args]: one JSON object per graded test."""
    code, results = run(sys.argv[1:] or None)
    for r in results:
        print(json.dumps(asdict(r), ensure_ascii=False))
    sys.exit(0 if code in (0, 1) else code)


if __name__ == "__main__":
    main()
