"""Writes are atomic: a checkpoint is written into a partial folder beside --out and renamed when complete, so a full
disk or Ctrl-C leaves nothing half-written (and an old folder written over with --force stays whole); the free space
checked counts everything written; the progress file and the other small files never leave a temporary file behind,
and a corrupt progress file is kept before it is replaced."""

import json
import os

import pytest
import torch

from ckpt_kit import grader, one_line_error
from cli_kit import call
from grader.formats import writers
from grader.learner import history
from grader.paths import MODELS

pytestmark = pytest.mark.usefixtures("clean_env")

ENOSPC_TEXT = "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"  # torch.save on a full disk


def make(out, *extra):
    return ("checkpoint", "make", "--preset", "tiny-llama3", "--out", out, *extra)


def convert(out, layout, *extra):
    return ("checkpoint", "convert", "--from", MODELS / "tiny-llama3", "--to-layout", layout, "--out", out, *extra)


VERBS = {"make meta": lambda out: make(out), "make hf": lambda out: make(out, "--layout", "hf"),
         "convert meta": lambda out: convert(out, "meta"), "convert hf": lambda out: convert(out, "hf")}


@pytest.fixture
def fail_midway(monkeypatch):
    """torch.save and the safetensors writer write part of their file, then fail as a full disk does (or as Ctrl-C
    does, with fail_midway("ctrl-c"))."""
    def arm(kind: str = "disk full"):
        def fault(path):
            with open(path, "wb") as f:
                f.write(b"half a file")
            if kind == "ctrl-c":
                raise KeyboardInterrupt
            raise RuntimeError(ENOSPC_TEXT)

        monkeypatch.setattr(torch, "save", lambda obj, path, *a, **k: fault(path))
        monkeypatch.setattr(writers, "write_safetensors", lambda path, *a, **k: fault(path))
    return arm


def nothing_left(out) -> bool:
    return not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.mark.parametrize("verb", VERBS)
def test_a_full_disk_leaves_nothing_half_written(capsys, tmp_path, fail_midway, verb):
    fail_midway()
    out = tmp_path / "out"
    line = one_line_error(capsys, *VERBS[verb](out))
    assert str(out) in line and "free" in line and "nothing" in line
    assert nothing_left(out)


@pytest.mark.parametrize("verb", VERBS)
def test_ctrl_c_leaves_nothing_half_written(capsys, tmp_path, fail_midway, verb):
    fail_midway("ctrl-c")
    out = tmp_path / "out"
    assert grader(*VERBS[verb](out)) == 130
    assert nothing_left(out)


def test_a_failed_write_over_a_folder_keeps_the_old_one_whole(capsys, tmp_path, fail_midway):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    fail_midway()
    one_line_error(capsys, *make(out, "--force"))
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and nothing_left(tmp_path / "other")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_force_moves_the_complete_files_in_and_keeps_the_others(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    (out / "params.json").write_text("{}")
    assert grader(*make(out, "--force")) == 0
    assert (out / "mine.txt").read_text() == "mine" and json.loads((out / "params.json").read_text())["dim"] == 32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


@pytest.fixture
def space_checked(monkeypatch):
    """The bytes every check of free space asked for, in order."""
    asked = []
    real = writers.check_free_space

    def recording(out, nbytes):
        asked.append(nbytes)
        return real(out, nbytes)

    monkeypatch.setattr(writers, "check_free_space", recording)
    return asked


def written(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("verb", VERBS)
def test_the_space_checked_counts_everything_written(capsys, tmp_path, space_checked, verb):
    out = tmp_path / "out"
    assert grader(*VERBS[verb](out)) == 0
    assert space_checked and written(out) <= space_checked[-1], "the tokenizer and the small files count too"


def test_the_space_checked_for_an_import_counts_everything_written(capsys, tmp_path, space_checked):
    from gguf_kit import write_gguf

    write_gguf(tmp_path / "tiny.gguf")
    assert grader("checkpoint", "import-gguf", tmp_path / "tiny.gguf", "--out", tmp_path / "out") == 0
    assert space_checked and written(tmp_path / "out") <= space_checked[-1]


# --- the small files: the progress file, a reset stub, verify's memory ---------------------------------------------

def temporary_files(folder) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]


def test_a_progress_file_that_cannot_be_replaced_leaves_no_temporary_file(root, monkeypatch, capsys):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    history.record_next("ex04_rms_norm")
    assert "could not save your progress" in capsys.readouterr().err
    assert temporary_files(root) == []


def test_ctrl_c_while_saving_progress_leaves_no_temporary_file(root, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)  # the last moment: the temporary file is written
    with pytest.raises(KeyboardInterrupt):
        history.record_next("ex04_rms_norm")
    assert temporary_files(root) == []


def test_a_corrupt_progress_file_is_kept_before_it_is_replaced(root, capsys):
    progress = root / ".llama3-progress.json"
    progress.write_text('{"first_passed": {"ex01_tokenizer": "2024-01-0')
    history.record_passes(["ex02_checkpoint"])
    kept = [p for p in root.iterdir() if p.name.startswith(".llama3-progress.json.corrupt")]
    assert len(kept) == 1 and kept[0].read_text() == '{"first_passed": {"ex01_tokenizer": "2024-01-0'
    today = history.datetime.date.today().isoformat()
    assert json.loads(progress.read_text())["first_passed"] == {"ex02_checkpoint": today}
    assert kept[0].name in capsys.readouterr().err


def test_a_reset_that_cannot_replace_the_stub_leaves_no_temporary_file(root, monkeypatch, capsys):
    (root / "exercises" / "ex04_rms_norm.py").write_text("# mine\n")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    assert call("reset", "4", "--yes") == 2
    assert "ex04_rms_norm.py" in capsys.readouterr().err
    assert temporary_files(root / "exercises") == []


def test_verify_s_memory_leaves_no_temporary_file_when_interrupted(capsys, tmp_path, monkeypatch):
    from grader.formats import verify

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        verify.verify(MODELS / "tiny-llama3", show_progress=False)
    assert os.environ["LLAMA3_KIT_CACHE"] == str(tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []
