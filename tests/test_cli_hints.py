"""`llama3-grader hint N` shows one more hint per call; `solution N` refuses until exercise N passes."""

import json

from cli_kit import call
from grader.learner import curriculum
from learners import solution


def test_each_call_shows_one_more_hint(root, capsys):
    hints = curriculum.get(4).hints
    for shown in range(1, len(hints) + 2):
        assert call("hint", "4") == 0
        out = capsys.readouterr().out
        expected = min(shown, len(hints))
        assert f"hint {expected} of {len(hints)}" in out
        assert all(h in out for h in hints[:expected])
        assert all(h not in out for h in hints[expected:])
    assert "That is every hint" in out
    assert json.loads((root / ".llama3-progress.json").read_text())["hints"] == {"ex04_rms_norm": len(hints)}


def test_hints_in_chinese_from_the_option_or_the_environment(root, capsys, monkeypatch):
    zh = curriculum.get(6).hints_zh
    assert call("hint", "6", "--lang", "zh") == 0
    assert zh[0] in capsys.readouterr().out
    monkeypatch.setenv("LLAMA3_KIT_LANG", "zh")
    assert call("hint", "6") == 0
    out = capsys.readouterr().out
    assert f"提示 2/{len(zh)}" in out and zh[1] in out


def test_each_exercise_has_as_many_hints_in_both_languages():
    for e in curriculum.exercises():
        assert len(e.hints) == len(e.hints_zh) >= 3, e.module
        assert e.title and e.title_zh


def test_solution_refuses_before_the_exercise_passes_and_shows_it_after(root, capsys):
    assert call("solution", "4") == 1
    refused = capsys.readouterr().out
    assert "does not pass yet (0/" in refused
    assert "test_rms_norm[tiny-llama3]: not started: implement rms_norm" in refused
    assert "def rms_norm" not in refused

    (root / "exercises" / "ex04_rms_norm.py").write_text(solution("ex04_rms_norm") + "\n# my own version\n")
    assert call("solution", "4") == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out, "piped output is plain text"
    yours, reference = out.index("Your code: exercises/ex04_rms_norm.py"), out.index("The reference:")
    assert yours < out.index("# my own version") < reference < out.rindex("def rms_norm")
    assert "Exercise 4: RMSNorm." not in out, "the chapter (module docstring) is left out"
    assert "ex04_rms_norm" in json.loads((root / ".llama3-progress.json").read_text())["first_passed"]



def test_hint_without_a_number_is_for_the_first_exercise_not_yet_passed(root, capsys):
    assert call("hint") == 0
    assert "Exercise 1 · Tokenizer: hint 1 of" in capsys.readouterr().out
    passed = {e.module: "2026-11-01" for e in curriculum.exercises()[:3]}
    progress = root / ".llama3-progress.json"
    progress.write_text(json.dumps({"first_passed": passed, "hints": json.loads(progress.read_text())["hints"]}))
    assert call("hint") == 0
    assert f"{curriculum.get(4).heading()}: hint 1 of" in capsys.readouterr().out
    assert json.loads(progress.read_text())["hints"] == {"ex01_tokenizer": 1, "ex04_rms_norm": 1}


NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6}


def test_a_hint_that_counts_the_functions_counts_them_right():
    """'Five functions: ...' must match the functions the stub asks for (exercise 2's hint once said three of five)."""
    import ast
    import re

    from grader.learner import pristine

    for e in curriculum.exercises():
        body = ast.parse(pristine.read(e.stub)).body
        todo = [n.name for n in body
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and "NotImplementedError" in ast.unparse(n)]
        for hint in e.hints + e.hints_zh:
            for word in re.findall(r"\b(one|two|three|four|five|six)\b (?:small )?functions"
                                   r"|([一两二三四五六])个(?:小)?函数", hint, re.I):
                assert NUMBERS[(word[0] or word[1]).lower()] == len(todo), (e.module, hint, todo)


def test_after_reset_hint_gives_the_exercise_the_scoreboard_shows_next(root, capsys, monkeypatch):
    """Every exercise passed once; then `reset 3`. The scoreboard's Next is exercise 3, and so is hint's (the first
    exercise without a first-passed day would be none of them: every one has one)."""
    from grader.engine import grading
    from grader.engine.results import Result

    progress = root / ".llama3-progress.json"
    progress.write_text(json.dumps({"first_passed": {e.module: "2026-11-01" for e in curriculum.exercises()},
                                    "hints": {}}))
    (root / "exercises" / "ex03_embeddings.py").write_text(solution("ex03_embeddings"))
    assert call("reset", "3", "--yes") == 0

    def graded(**kwargs):  # what grading the folder now gives: exercise 3 is a stub again, the others pass
        return [Result(f"exercises/test_{e.module}.py::test_a", e.module, "failed" if e.id == 3 else "passed",
                       "not started" if e.id == 3 else "passed", "not started: implement embed" if e.id == 3 else "",
                       0.01)
                for e in curriculum.exercises()]

    monkeypatch.setattr(grading, "run", graded)
    assert call() == 0
    assert "Next: Exercise 3 · Embeddings" in capsys.readouterr().out
    assert call("hint") == 0
    assert capsys.readouterr().out.startswith("Exercise 3 · Embeddings: hint 1 of")
