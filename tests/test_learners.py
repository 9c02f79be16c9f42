"""The kit's own tests stand apart from the learner's work: the trees they grade hold the pristine stubs and the
kit's graded tests, whatever the learner has written in exercises/."""

import os
import shutil
import sys

import pytest

import learners
from grader.engine import plugin
from grader.learner import curriculum, pristine
from grader.paths import ROOT


def test_a_tree_holds_the_pristine_stubs_whatever_the_learner_wrote(tmp_path, monkeypatch):
    mine = tmp_path / "clone" / "exercises"  # a learner's exercises/, with exercise 4 solved and a stray file
    shutil.copytree(learners.KIT_EXERCISES, mine, ignore=shutil.ignore_patterns("__pycache__"))
    (mine / "ex04_rms_norm.py").write_text(learners.solution("ex04_rms_norm"))
    (mine / "scratch_notes.py").write_text("x = 1\n")
    monkeypatch.setattr(learners, "KIT_EXERCISES", mine)

    folder = learners.tree(tmp_path / "graded") / "exercises"
    for e in curriculum.exercises():
        assert (folder / e.stub).read_bytes() == pristine.read(e.stub), e.stub
        assert (folder / e.tests).read_bytes() == (mine / e.tests).read_bytes(), e.tests
        assert (folder / f"{e.module}.zh.md").is_file()
    assert (folder / "__init__.py").is_file() and not (folder / "scratch_notes.py").exists()


def test_planted_modules_replace_the_stubs(tmp_path):
    folder = learners.tree(tmp_path, {"ex04_rms_norm": "# planted\n"}) / "exercises"
    assert (folder / "ex04_rms_norm.py").read_text() == "# planted\n"
    assert (folder / "ex05_qkv.py").read_bytes() == pristine.read("ex05_qkv.py")


def test_the_kit_s_own_session_is_not_a_grading_session():
    """tests/test_explore.py is not a graded test file: a session of the kit's own tests builds no goldens for the
    learner's trained model, pins no threads and starts no worker."""
    assert not plugin.grades_exercises([ROOT / "tests"])
    assert not plugin.grades_exercises([f"{ROOT}/tests/test_explore.py::test_explore_writes_the_four_pngs"])
    assert plugin.grades_exercises([ROOT / "exercises"])
    assert plugin.grades_exercises([f"{ROOT}/exercises/test_ex04_rms_norm.py::test_rms_norm"])


def test_commands_run_one_after_another_and_a_test_reads_its_own(tmp_path):
    python = [sys.executable, "-c"]
    commands = learners.Commands({("m", "a"): ([*python, "print('a')"], tmp_path, dict(os.environ)),
                                  ("m", "b"): ([*python, "import sys; sys.exit(3)"], tmp_path, dict(os.environ)),
                                  ("m", "c"): ([str(tmp_path / "no-such-program")], tmp_path, dict(os.environ))})
    b, a = commands.result(("m", "b")), commands.result(("m", "a"))
    assert a.stdout == "a\n" and b.returncode == 3 and b.started >= a.started
    with pytest.raises(OSError):
        commands.result(("m", "c"))
    assert not commands.running()


def test_a_command_runs_until_its_result_is_in(tmp_path):
    commands = learners.Commands({("m", "slow"): ([sys.executable, "-c", "import time; time.sleep(2)"], tmp_path,
                                                  dict(os.environ))})
    assert commands.running()
    commands.result(("m", "slow"))
    assert not commands.running()
