"""`llama3-grader reset N` restores the stub from grader/learner/stubs.zip after asking, keeping a backup; the zip
matches the stubs as committed."""

import shutil
import subprocess

import pytest

from cli_kit import call
from grader.learner import curriculum, pristine
from grader.paths import ROOT


def test_reset_restores_the_stub_and_keeps_a_backup(root, capsys):
    mine = root / "exercises" / "ex04_rms_norm.py"
    mine.write_text("def rms_norm(x, weight, eps):\n    return x  # my attempt\n")
    assert call("reset", "4", "--yes") == 0
    assert mine.read_bytes() == pristine.read("ex04_rms_norm.py")
    [backup] = (root / ".llama3-backups").iterdir()
    assert backup.read_text().endswith("# my attempt\n")
    assert str(backup.relative_to(root)) in capsys.readouterr().out


def test_reset_asks_first(root, capsys, monkeypatch):
    mine = root / "exercises" / "ex09_feed_forward.py"
    mine.write_text("# mine\n")
    assert call("reset", "9") == 2, "without a terminal to ask in, it needs --yes"
    assert "--yes" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert call("reset", "9") == 1
    assert mine.read_text() == "# mine\n"
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert call("reset", "9") == 0
    assert mine.read_bytes() == pristine.read("ex09_feed_forward.py")
    assert call("reset", "9") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(list((root / ".llama3-backups").iterdir())) == 1


def test_stubs_zip_matches_the_committed_stubs():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for e in curriculum.exercises():
        committed = subprocess.run(["git", "show", f"HEAD:exercises/{e.stub}"], cwd=ROOT, capture_output=True,
                                   check=True).stdout
        assert pristine.read(e.stub) == committed, (
            f"grader/learner/stubs.zip differs from exercises/{e.stub} as committed: run "
            "`python -m grader.learner.pristine` and commit both")


def test_the_zip_is_reproducible(tmp_path):
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    assert pristine.build(out=a) == [e.stub for e in curriculum.exercises()]
    pristine.build(out=b)
    assert a.read_bytes() == b.read_bytes()
