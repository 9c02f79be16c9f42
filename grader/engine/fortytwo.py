"""The real-weights lines: is a real checkpoint set, was it verified, and did the real-model tests reproduce 42? And
is the trained model fetched, and how many of the graded tests pass on it?"""

import os
from pathlib import Path

from ..i18n import say

TESTS = ("test_the_real_model_predicts_42", "test_the_real_model_answers_42")
REAL_WEIGHTS = "docs/real-weights.md"


def status(results: list) -> dict:
    """{"checkpoint": folder or None, "verified": last verify outcome or None, "tests": {test: status},
    "reproduced": bool, "trained": trained(results)} from one grading run."""
    folder = os.environ.get("LLAMA3_CHECKPOINT") or None
    tests = {}
    for r in results:
        name = r.nodeid.split("::", 1)[-1].split("[", 1)[0]
        if name in TESTS:
            tests[name] = {"status": r.status, "message": r.message}
    reproduced = bool(tests) and all(t["status"] == "passed" for t in tests.values())
    return {"checkpoint": folder, "verified": _verified(folder), "tests": tests, "reproduced": reproduced,
            "trained": trained(results)}


def trained(results: list) -> dict:
    """{"fetched": bool, "passed": n, "total": m} of the graded tests on the trained model in one grading run."""
    from .models import TRAINED, trained as trained_model

    mine = [r for r in results if f"[{TRAINED}]" in r.nodeid and r.outcome != "skipped"]
    passed = sum(r.outcome == "passed" for r in mine)
    return {"fetched": trained_model() is not None, "passed": passed, "total": len(mine)}


def trained_line(s: dict, lang: str | None = None) -> str:
    """One line: fetched? graded?"""
    if not s["fetched"]:
        return say("fortytwo.trained_not_fetched", lang=lang)
    return say("fortytwo.trained", passed=s["passed"], total=s["total"], lang=lang)


def _verified(folder: str | None) -> dict | None:
    """The last `llama3-grader checkpoint verify` outcome for folder, while its files are unchanged."""
    if folder is None:
        return None
    try:
        from ..formats.verify import last_result
    except ImportError:
        return None
    found = last_result(Path(folder))
    if found is None:
        return None
    return {k: found.get(k) for k in ("verdict", "ok", "model", "summary")}


def line(s: dict, lang: str | None = None) -> str:
    """One line a learner reads: found? verified? reproduced?"""
    if s["checkpoint"] is None:
        return say("fortytwo.no_checkpoint", doc=REAL_WEIGHTS, lang=lang)
    return f"42: {s['checkpoint']} · {_verified_text(s['verified'], lang)} · {_reproduced_text(s, lang)}"


def _verified_text(v: dict | None, lang: str | None) -> str:
    if v is None:
        return say("fortytwo.not_verified", lang=lang)
    if v.get("verdict") == "genuine":
        return say("fortytwo.genuine", model=v.get("model"), lang=lang)
    if v.get("ok"):
        return say("fortytwo.verified", verdict=v.get("verdict"), lang=lang)
    return say("fortytwo.problems", summary=v.get("summary"), lang=lang)


def _reproduced_text(s: dict, lang: str | None) -> str:
    if s["reproduced"]:
        return say("fortytwo.reproduced", lang=lang)
    if not s["tests"]:
        return say("fortytwo.not_graded", lang=lang)
    for name, t in s["tests"].items():
        if t["status"] == "skipped":
            reason = t["message"].removeprefix("Skipped: ")
            return say("fortytwo.not_graded_because", reason=reason, lang=lang)
    failing = [name for name, t in s["tests"].items() if t["status"] != "passed"]
    return say("fortytwo.not_reproduced", failing=", ".join(failing), lang=lang)
