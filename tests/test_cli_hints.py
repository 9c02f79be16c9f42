"""`llama3-grader hint N` shows one more hint per call; `solution N` refuses until exercise N passes."""

import json

from cli_kit import call, kit, root, run  # noqa: F401 (root is a fixture)
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


def test_solution_refuses_before_the_exercise_passes_and_shows_it_after(tmp_path):
    folder = kit(tmp_path)
    refused = run(folder, "solution", "4")
    assert refused.returncode == 1, refused.stderr
    assert "does not pass yet (0/" in refused.stdout
    assert "test_rms_norm[tiny-llama3]: not started: implement rms_norm" in refused.stdout
    assert "def rms_norm" not in refused.stdout

    (folder / "exercises" / "ex04_rms_norm.py").write_text(solution("ex04_rms_norm") + "\n# my own version\n")
    shown = run(folder, "solution", "4")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    out = shown.stdout
    assert "\x1b[" not in out, "piped output is plain text"
    yours, reference = out.index("Your code: exercises/ex04_rms_norm.py"), out.index("The reference:")
    assert yours < out.index("# my own version") < reference < out.rindex("def rms_norm")
    assert "Exercise 4: RMSNorm." not in out, "the chapter (module docstring) is left out"
    assert "ex04_rms_norm" in json.loads((folder / ".llama3-progress.json").read_text())["first_passed"]



def test_hint_without_a_number_is_for_the_first_exercise_not_yet_passed(root, capsys):
    assert call("hint") == 0
    assert "Exercise 1 · Tokenizer: hint 1 of" in capsys.readouterr().out
    passed = {e.module: "2026-11-01" for e in curriculum.exercises()[:3]}
    progress = root / ".llama3-progress.json"
    progress.write_text(json.dumps({"first_passed": passed, "hints": json.loads(progress.read_text())["hints"]}))
    assert call("hint") == 0
    assert f"{curriculum.get(4).heading()}: hint 1 of" in capsys.readouterr().out
    assert json.loads(progress.read_text())["hints"] == {"ex01_tokenizer": 1, "ex04_rms_norm": 1}
