"""The "42" line: is a real checkpoint set, was it verified, and did the real-model tests reproduce 42?"""

import os
from pathlib import Path

from ..i18n import pick

TESTS = ("test_the_real_model_predicts_42", "test_the_real_model_answers_42")
REAL_WEIGHTS = "docs/real-weights.md"


def status(results: list) -> dict:
    """{"checkpoint": folder or None, "verified": last verify outcome or None, "tests": {test: status},
    "reproduced": bool} from one grading run."""
    folder = os.environ.get("LLAMA3_CHECKPOINT") or None
    tests = {}
    for r in results:
        name = r.nodeid.split("::", 1)[-1].split("[", 1)[0]
        if name in TESTS:
            tests[name] = {"status": r.status, "message": r.message}
    reproduced = bool(tests) and all(t["status"] == "passed" for t in tests.values())
    return {"checkpoint": folder, "verified": _verified(folder), "tests": tests, "reproduced": reproduced}


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
