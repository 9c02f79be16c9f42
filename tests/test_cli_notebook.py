"""`llama3-grader notebook`: every exercise exports as a valid nbformat v4 notebook, in English and Chinese, and
each runs top to bottom with the reference in its code cell, its grading cell reporting every test passed."""

import re

import nbformat
import pytest

from cli_kit import call, root  # noqa: F401 (root is a fixture)
from grader.learner import curriculum
from grader.cli.experiments import RUNNERS
from learners import SOLUTIONS


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """Every exercise exported in both languages, with LLAMA3_KIT_ROOT at a fresh copy of the stubs."""
    from cli_kit import kit
    base = tmp_path_factory.mktemp("notebooks")
    folder, out = kit(base), base / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLAMA3_KIT_ROOT", str(folder))
        mp.delenv("LLAMA3_KIT_LANG", raising=False)
        assert call("notebook", "--all", "--out", str(out)) == 0
        assert call("notebook", "--all", "--out", str(out), "--lang", "zh") == 0
    return out


def test_every_exercise_exports_a_valid_notebook_in_both_languages(notebooks):
    for e in curriculum.exercises():
        for name, heading in [(f"{e.module}.ipynb", f"# Exercise {e.id}: "), (f"{e.module}.zh.ipynb", f"# 练习 {e.id}：")]:
            nb = nbformat.read(notebooks / name, as_version=4)
            nbformat.validate(nb)
            chapter, how, code, grading = nb.cells[:4]
            assert [c.cell_type for c in nb.cells[4:]] == (["markdown", "code"] if e.id in RUNNERS else [])  # an extra's experiment
            assert chapter.cell_type == "markdown" and chapter.source.startswith(heading), chapter.source[:80]
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


def test_every_notebook_runs_with_the_reference(notebooks, monkeypatch):
    """One kernel runs them all (starting one per notebook would cost more than the grading)."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    for name in ("LLAMA3_CHECKPOINT", "LLAMA3_KIT_IMPL", "LLAMA3_KIT_LANG", "LLAMA3_KIT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(notebooks))
    try:
        for e in curriculum.exercises():
            for name, passed in [(f"{e.module}.ipynb", "tests pass"), (f"{e.module}.zh.ipynb", "个测试通过")]:
                nb = nbformat.read(notebooks / name, as_version=4)
                nb.cells[2].source = f"%%writefile {e.stub}\n" + (SOLUTIONS / e.stub).read_text()
                NotebookClient(nb, km=km, timeout=600).execute()
                report = "".join(o.get("text", "") for o in nb.cells[3].outputs)
                heading = report.partition("\n")[0]
                done, total = _counts(heading)
                assert done == total > 0 and passed in heading, f"{name}:\n{report}"
                check_experiment(e, nb)
    finally:
        km.shutdown_kernel(now=True)


def _counts(heading: str) -> tuple[int, int]:
    """'Exercise 4 · RMSNorm: 5/5 tests pass' -> (5, 5)"""
    done, total = re.search(r"(\d+)/(\d+)", heading).groups()
    return int(done), int(total)


def check_experiment(e, nb) -> None:
    """An extra's experiment cell ran the reference on a model: its heading, a table, and (sampling, experiments) pictures inline."""
    if e.id not in RUNNERS:
        return
    outputs = nb.cells[-1].outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert text.startswith(e.heading(None)) or "练习" in text.partition("\n")[0], text[:200]
    assert "not started" not in text and len(text.splitlines()) > 5, text[:500]
    images = [o for o in outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == {13: 1, 14: 0, 15: 4}[e.id], [o.get("output_type") for o in outputs]
