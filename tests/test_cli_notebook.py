"""`llama3-grader notebook`: every exercise exports as a valid nbformat v4 notebook, in English and Chinese, and
each runs top to bottom with the reference in its code cell, its grading cell reporting every test passed; its
set-up cell installs the kit where it is missing (Colab) and does nothing where it is installed; its device cell picks
LLAMA3_KIT_DEVICE, else a GPU where there is one, and says which."""

import builtins
import os
import re
import subprocess
import sys

import nbformat
import pytest
import torch

from cli_kit import call
from grader.cli import notebook
from grader.learner import curriculum
from grader.cli.experiments import RUNNERS
from learners import SOLUTIONS

SETUP, DEVICE, CODE, GRADING = 2, 3, 4, 5  # cell indexes: chapter, how-to, set-up, device, code, grading


@pytest.fixture(scope="module")
def kit_folder(tmp_path_factory):
    from cli_kit import kit
    return kit(tmp_path_factory.mktemp("notebooks"))


@pytest.fixture(scope="module")
def notebooks(kit_folder):
    """Every exercise exported in both languages, with LLAMA3_KIT_ROOT at a fresh copy of the stubs."""
    out = kit_folder.parent / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLAMA3_KIT_ROOT", str(kit_folder))
        mp.delenv("LLAMA3_KIT_LANG", raising=False)
        assert call("notebook", "--all", "--out", str(out)) == 0
        assert call("notebook", "--all", "--out", str(out), "--lang", "zh") == 0
    return out


def test_every_exercise_exports_a_valid_notebook_in_both_languages(notebooks):
    for e in curriculum.exercises():
        headings = [(f"{e.module}.ipynb", f"# Exercise {e.id}: "), (f"{e.module}.zh.ipynb", f"# 练习 {e.id}：")]
        for name, heading in headings:
            nb = nbformat.read(notebooks / name, as_version=4)
            nbformat.validate(nb)
            chapter, how, setup, device, code, grading = nb.cells[:6]
            experiment = ["markdown", "code"] if e.id in RUNNERS else []  # an extra's
            assert [c.cell_type for c in nb.cells[6:]] == experiment
            assert chapter.cell_type == "markdown" and chapter.source.startswith(heading), chapter.source[:80]
            assert setup.cell_type == "code" and notebook.KIT_GIT_URL in setup.source
            assert device.cell_type == "code" and "DEVICE = use_device(" in device.source
            assert code.source.startswith(f"%%writefile {e.stub}\n")
            assert "raise NotImplementedError" in code.source and '"""Exercise' not in code.source
            assert grading.source.startswith("from grader.cli.notebook import grade")
            assert f"grade({e.id}, '{e.stub}'" in grading.source


def test_exporting_again_keeps_your_notebook(notebooks, root, capsys):
    path = notebooks / "ex04_rms_norm.ipynb"
    before = path.read_bytes()
    assert call("notebook", "4", "--out", str(notebooks)) == 0
    assert "kept" in capsys.readouterr().out
    assert path.read_bytes() == before


def test_notebook_needs_one_exercise_or_all(root, capsys):
    assert call("notebook") == 2
    assert call("notebook", "4", "--all") == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_the_chinese_notebooks_run_the_same_code_as_the_english_ones(notebooks):
    """Only the text differs, and the grading cell's lang='zh': so running every English notebook and one Chinese
    one (the next test) runs the code of them all."""
    for e in curriculum.exercises():
        en, zh = (nbformat.read(notebooks / f"{e.module}{suffix}.ipynb", as_version=4).cells for suffix in ("", ".zh"))
        assert zh[CODE].source == en[CODE].source
        assert zh[GRADING].source == en[GRADING].source.replace(")", ", lang='zh')")
        assert zh[SETUP].source.splitlines()[1:] == en[SETUP].source.splitlines()[1:]  # the comment is translated
        assert zh[DEVICE].source.splitlines()[2:] == en[DEVICE].source.replace(")", "lang='zh')").splitlines()[2:]


# Run with the reference quickly: one of each kind, a core notebook (the core's are one template) and an extra's in
# Chinese (its own experiment, with pictures); every other one, each extra's experiment included, under -m slow.
QUICK = [(4, ""), (15, ".zh")]


def test_the_quick_notebooks_run_with_the_reference(notebooks, kit_folder, monkeypatch):
    """One kernel runs them all (starting one per notebook would cost more than the grading), every cell of each,
    set-up cell included. The grading copies the pristine kit folder's exercises/, not the learner's."""
    run_notebooks(notebooks, kit_folder, monkeypatch, [(curriculum.get(n), suffix) for n, suffix in QUICK])


@pytest.mark.slow
def test_every_notebook_runs_with_the_reference(notebooks, kit_folder, monkeypatch):
    """Every notebook, core and extras, in both languages."""
    runs = [(e, suffix) for suffix in ("", ".zh") for e in curriculum.exercises()]
    run_notebooks(notebooks, kit_folder, monkeypatch, [(e, s) for e, s in runs if (e.id, s) not in QUICK])


def run_notebooks(notebooks, kit_folder, monkeypatch, runs) -> None:
    """Each (exercise, suffix) notebook of runs, in one kernel, with the reference in its code cell: every test of its
    grading cell passes, and its experiment (an extra's) shows its figures."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    for name in ("LLAMA3_CHECKPOINT", "LLAMA3_KIT_IMPL", "LLAMA3_KIT_LANG", "LLAMA3_KIT_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLAMA3_KIT_ROOT", str(kit_folder))
    monkeypatch.setenv("LLAMA3_KIT_CACHE", str(kit_folder.parent / "kit-cache"))
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(notebooks))
    try:
        for e, suffix in runs:
            name, passed = f"{e.module}{suffix}.ipynb", "个测试通过" if suffix else "tests pass"
            nb = nbformat.read(notebooks / name, as_version=4)
            nb.cells[CODE].source = f"%%writefile {e.stub}\n" + (SOLUTIONS / e.stub).read_text()
            NotebookClient(nb, km=km, timeout=600).execute()
            assert not nb.cells[SETUP].outputs, nb.cells[SETUP].outputs  # the kit is installed: nothing to do
            said = "".join(o.get("text", "") for o in nb.cells[DEVICE].outputs)
            assert said.startswith(("device: ", "设备：")) and AUTO in said, said  # auto: a GPU where there is
            report = "".join(o.get("text", "") for o in nb.cells[GRADING].outputs)
            heading = report.partition("\n")[0]
            done, total = _counts(heading)
            assert done == total > 0 and passed in heading, f"{name}:\n{report}"
            check_experiment(e, nb)
    finally:
        km.shutdown_kernel(now=True)


AUTO = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"


def test_the_device_cell_takes_the_environment_else_auto(monkeypatch, capsys):
    monkeypatch.setenv("LLAMA3_KIT_DEVICE", "cpu")
    assert notebook.use_device() == "cpu" and capsys.readouterr().out.startswith("device: cpu")
    monkeypatch.delenv("LLAMA3_KIT_DEVICE")
    assert notebook.use_device("zh") == AUTO and capsys.readouterr().out.startswith(f"设备：{AUTO}")
    assert os.environ["LLAMA3_KIT_DEVICE"] == AUTO  # resolved, for the grading and experiment cells of this kernel


def _counts(heading: str) -> tuple[int, int]:
    """'Exercise 4 · RMSNorm: 5/5 tests pass' -> (5, 5)"""
    done, total = re.search(r"(\d+)/(\d+)", heading).groups()
    return int(done), int(total)


def test_the_set_up_cell_installs_the_kit_where_it_is_missing(monkeypatch, tmp_path):
    """Where `import grader` fails (Colab), the cell clones KIT_GIT_URL beside the notebook and pip-installs it."""
    ran = []
    real_import = builtins.__import__

    def without_the_kit(name, *args, **kwargs):
        if name == "grader" and not ran:
            raise ImportError("No module named 'grader'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_the_kit)
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: ran.append(command))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    exec(notebook.setup(None), {})
    assert ran == [["git", "clone", "--depth", "1", notebook.KIT_GIT_URL, "llama3-kit"],
                   [sys.executable, "-m", "pip", "install", "-q", "-e", "llama3-kit"]]
    assert sys.path[0] == str(tmp_path / "llama3-kit")


def check_experiment(e, nb) -> None:
    """An extra's experiment cell ran the reference on a model: its heading, a table, and (sampling, experiments)
    pictures inline."""
    if e.id not in RUNNERS:
        return
    outputs = nb.cells[-1].outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert text.startswith(e.heading(None)) or "练习" in text.partition("\n")[0], text[:200]
    assert "not started" not in text and len(text.splitlines()) > 5, text[:500]
    images = [o for o in outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == {13: 1, 14: 0, 15: 4, 16: 1, 17: 0, 18: 0}[e.id], [o.get("output_type") for o in outputs]
