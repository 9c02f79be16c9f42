"""The verbs on the extras: hint, solution, reset and notebook take their numbers; generate samples with exercise 13
(--temperature, --top-k, --top-p, --seed: the same seed gives the same text), and its bad options are one line."""

import json

import pytest

from cli_kit import call
from grader.learner import curriculum
from learners import solution


def test_every_extra_has_hints_in_both_languages_and_a_chinese_chapter():
    from grader.paths import ROOT

    extras = curriculum.track("extras")
    assert [e.id for e in extras][:3] == [13, 14, 15]
    for e in extras:
        assert len(e.hints) == len(e.hints_zh) >= 3
        assert (ROOT / "exercises" / f"{e.module}.zh.md").is_file()


def test_hint_solution_reset_and_notebook_take_an_extra(root, capsys, tmp_path):
    assert call("hint", "13") == 0 and "Exercise 13 · Sampling" in capsys.readouterr().out
    assert call("hint", "14", "--lang", "zh") == 0 and "练习 14" in capsys.readouterr().out
    assert call("solution", "15") == 1 and "does not pass yet" in capsys.readouterr().out
    stub = root / "exercises" / "ex13_sampling.py"
    original = stub.read_bytes()
    stub.write_text(solution("ex13_sampling"))
    assert call("solution", "13") == 0 and "The reference" in capsys.readouterr().out
    assert call("reset", "13", "--yes") == 0 and stub.read_bytes() == original
    assert call("notebook", "14", "--out", str(tmp_path)) == 0 and (tmp_path / "ex14_chat.ipynb").is_file()


def _generate(capsys, *args: str) -> dict:
    assert call("generate", "--impl", "solutions", "--json", "--max-new-tokens", "6", *args) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_samples_with_a_seed(root, capsys):
    greedy = _generate(capsys)
    first = _generate(capsys, "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--seed", "3")
    again = _generate(capsys, "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--seed", "3")
    other = _generate(capsys, "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--seed", "4")
    assert (greedy["sampling"] is None
            and first["sampling"] == {"temperature": 0.9, "top_k": 40, "top_p": 0.95, "seed": 3})
    assert first["generated_ids"] == again["generated_ids"] != other["generated_ids"]
    # temperature 0 is greedy
    assert _generate(capsys, "--temperature", "0")["generated_ids"] == greedy["generated_ids"]


@pytest.mark.parametrize("bad", [["--temperature", "-1"], ["--top-k", "0"], ["--top-p", "0"], ["--top-p", "1.5"]])
def test_bad_sampling_options_are_one_line(root, capsys, bad):
    assert call("generate", "--impl", "solutions", *bad) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_sampling_with_your_stub_says_not_started(root, capsys):
    assert call("generate", "--impl", "exercises", "--temperature", "0.7") == 2
    assert "not started" in capsys.readouterr().err
