"""The real-weights lines: is a real checkpoint set, was it verified, and did the real-model tests reproduce 42? And
is the trained model fetched, and how many of the graded tests pass on it?"""

import os
from pathlib import Path

from ..i18n import pick

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
    return {"checkpoint": folder, "verified": _verified(folder), "tests": tests, "reproduced": reproduced, "trained": trained(results)}


def trained(results: list) -> dict:
    """{"fetched": bool, "passed": n, "total": m} of the graded tests on the trained model in one grading run."""
    from .models import TRAINED, trained as trained_model

    mine = [r for r in results if f"[{TRAINED}]" in r.nodeid and r.outcome != "skipped"]
    return {"fetched": trained_model() is not None, "passed": sum(r.outcome == "passed" for r in mine), "total": len(mine)}


def trained_line(s: dict, lang: str | None = None) -> str:
    """One line: fetched? graded?"""
    if not s["fetched"]:
        return pick("trained model: not fetched. `llama3-grader checkpoint fetch smollm2` grades every exercise on SmolLM2-135M-Instruct too",
                    "训练好的模型：尚未获取。运行 `llama3-grader checkpoint fetch smollm2` 后，每个练习也会在 SmolLM2-135M-Instruct 上评分", lang)
    return pick(f"trained model: SmolLM2-135M-Instruct · {s['passed']}/{s['total']} graded tests pass on it",
                f"训练好的模型：SmolLM2-135M-Instruct · 其上 {s['total']} 个评分测试中 {s['passed']} 个通过", lang)


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
        return pick(f"42: no real checkpoint yet. Set LLAMA3_CHECKPOINT to a Meta-Llama-3-8B folder to grade on it ({REAL_WEIGHTS})",
                    f"42：还没有真实检查点。把 LLAMA3_CHECKPOINT 设为 Meta-Llama-3-8B 文件夹即可在真实模型上评分（{REAL_WEIGHTS}）", lang)
    return f"42: {s['checkpoint']} · {_verified_text(s['verified'], lang)} · {_reproduced_text(s, lang)}"


def _verified_text(v: dict | None, lang: str | None) -> str:
    if v is None:
        return pick("not verified (run llama3-grader checkpoint verify)", "未校验（运行 llama3-grader checkpoint verify）", lang)
    if v.get("verdict") == "genuine":
        return pick(f"verified: genuine {v.get('model')}", f"已校验：正版 {v.get('model')}", lang)
    if v.get("ok"):
        return pick(f"verified: {v.get('verdict')}", f"已校验：{v.get('verdict')}", lang)
    return pick(f"verify found problems: {v.get('summary')}", f"校验发现问题：{v.get('summary')}", lang)


def _reproduced_text(s: dict, lang: str | None) -> str:
    if s["reproduced"]:
        return pick("42 reproduced", "已复现 42", lang)
    if not s["tests"]:
        return pick("42 not graded", "42 未评分", lang)
    for name, t in s["tests"].items():
        if t["status"] == "skipped":
            reason = t["message"].removeprefix("Skipped: ")
            return pick(f"42 not graded: {reason}", f"42 未评分：{reason}", lang)
    failing = [name for name, t in s["tests"].items() if t["status"] != "passed"]
    return pick(f"42 not reproduced yet ({', '.join(failing)} still fails)", f"尚未复现 42（{', '.join(failing)} 仍未通过）", lang)
