"""Every error a person can cause is one line on stderr that says what to do, and exit code 2."""

import pytest

from cli_kit import call
from grader.engine import grading
from grader.learner import curriculum


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("llama3-grader: ")
    return lines[0]


@pytest.mark.parametrize("verb", ["hint", "solution", "reset", "notebook"])
def test_an_unknown_exercise_number(root, capsys, verb):
    last = max(e.id for e in curriculum.exercises())
    assert call(verb, str(last + 1)) == 2
    assert (f"there is no exercise {last + 1}: the exercises are numbered 1 to {last}"
            in one_line(capsys.readouterr().err))


def test_a_number_that_is_not_one(root, capsys):
    assert call("hint", "four") == 2
    assert "invalid int value" in one_line(capsys.readouterr().err)


def test_an_unknown_exercise_number_in_chinese(root, capsys):
    assert call("hint", "0", "--lang", "zh") == 2
    assert "没有练习 0" in one_line(capsys.readouterr().err)


def test_a_missing_fixtures_folder(root, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(grading, "GOLDENS", tmp_path / "nowhere")
    assert call("solution", "4") == 2
    assert "git checkout -- fixtures" in one_line(capsys.readouterr().err)


def test_a_missing_test_file(root, capsys):
    (root / "exercises" / "test_ex04_rms_norm.py").unlink()
    assert call("solution", "4") == 2
    assert "git checkout -- exercises/test_ex04_rms_norm.py" in one_line(capsys.readouterr().err)


def test_an_unknown_implementation(root, capsys):
    assert call("--impl", "mine") == 2
    assert "--impl exercises or --impl solutions" in one_line(capsys.readouterr().err)


def test_no_tests_collected(root, capsys):
    for test in (root / "exercises").glob("test_*.py"):
        test.unlink()
    assert call() == 2
    out, err = capsys.readouterr()
    assert "no graded tests were collected" in one_line(err)
    assert out == ""


def test_a_checkpoint_folder_that_does_not_exist(root, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LLAMA3_CHECKPOINT", str(tmp_path / "no-such-model"))
    assert call("solution", "4") == 2
    err = capsys.readouterr().err
    assert "LLAMA3_CHECKPOINT" in one_line(err) and "no-such-model" in err


def test_a_graded_test_file_that_cannot_be_imported(root, capsys):
    with open(root / "exercises" / "test_ex03_embeddings.py", "a") as f:
        f.write("\nimport no_such_module\n")
    assert call("solution", "3") == 2
    line = one_line(capsys.readouterr().err)
    assert ("test_ex03_embeddings.py" in line and "No module named 'no_such_module'" in line
            and "pytest exercises/" in line)
