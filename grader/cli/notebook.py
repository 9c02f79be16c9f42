"""`llama3-grader notebook N` (or --all): an exercise as a Jupyter notebook: the chapter, a set-up cell that
installs the kit where it is missing (Colab), your code, a grading cell. And grade(), which that cell calls.

The code cell starts with %%writefile, so running it saves the code as a file beside the notebook. grade() copies
your exercises/ to a temporary folder, puts that file in place of the exercise's, and runs the same graded tests
as `pytest exercises/ -k exNN` on the copy: your exercises/ is never touched."""

import argparse
import ast
import shutil
import tempfile
from pathlib import Path

from ..learner import curriculum, workspace
from ..errors import KitError
from ..i18n import LANGS, pick
from ..paths import ROOT

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
          "language_info": {"name": "python"}}
KIT_GIT_URL = "https://github.com/llama3-kit/llama3-kit"  # where a notebook without the kit (Colab) clones it from


def register(sub) -> None:
    p = sub.add_parser("notebook", help="export an exercise (or --all) as a Jupyter notebook")
    p.add_argument("number", type=int, nargs="?", help="exercise number, e.g. 4")
    p.add_argument("--all", action="store_true", help="export every exercise")
    p.add_argument("--out", type=Path, help="folder to write into (default: notebooks/ in the kit's folder)")
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.set_defaults(run=run)


def run(args) -> int:
    import nbformat

    lang = args.lang
    if args.all and args.number is not None:
        raise KitError(pick("give an exercise number or --all, not both", "练习编号和 --all 只能二选一", lang))
    if not args.all and args.number is None:
        raise KitError(pick("name an exercise (llama3-grader notebook 4) or use --all",
                            "请指定一个练习（llama3-grader notebook 4）或使用 --all", lang))
    chosen = curriculum.exercises() if args.all else [curriculum.get(args.number, lang)]
    out = args.out or workspace.notebooks()
    out.mkdir(parents=True, exist_ok=True)
    for e in chosen:
        path = out / file_name(e, lang)
        if path.exists():
            print(pick(f"kept {path}: it exists (delete it to export a fresh one)", f"保留 {path}：文件已存在（删除后可重新导出）", lang))
            continue
        nbformat.write(build(e, lang), str(path))
        print(pick(f"wrote {path}", f"已写入 {path}", lang))
    return 0


def file_name(e: curriculum.Exercise, lang) -> str:
    return pick(f"{e.module}.ipynb", f"{e.module}.zh.ipynb", lang)


def build(e: curriculum.Exercise, lang):
    """The notebook, validated against nbformat v4."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    lang_arg = ", lang='zh'" if pick("en", "zh", lang) == "zh" else ""
    nb = new_notebook(metadata=KERNEL, cells=[
        new_markdown_cell(chapter(e, lang)),
        new_markdown_cell(how_to(e, lang)),
        new_code_cell(setup(lang)),
        new_code_cell(f"%%writefile {e.stub}\n{code(e)}"),
        new_code_cell(f"from grader.cli.notebook import grade\n\ngrade({e.id}, {e.stub!r}{lang_arg})"),
    ])
    nb.cells += experiment_cells(e, lang, lang_arg)
    nbformat.validate(nb)
    return nb


def experiment_cells(e: curriculum.Exercise, lang, lang_arg: str) -> list:
    """An extra's experiment, after the grading cell: on the trained SmolLM2 when fetched, else the tiny model."""
    from nbformat.v4 import new_code_cell, new_markdown_cell

    from .experiments import RUNNERS

    if e.id not in RUNNERS:
        return []
    return [new_markdown_cell(pick(
                "**The experiment.** Once your code passes, run it on a model: the trained SmolLM2 when "
                "`llama3-grader checkpoint fetch smollm2` has fetched it, the tiny random Llama 3 otherwise.",
                "**实验。** 代码通过之后，在模型上运行它：如果 `llama3-grader checkpoint fetch smollm2` 已获取训练好的 SmolLM2，"
                "就用它，否则用权重随机的小 Llama 3。", lang)),
            new_code_cell(f"from grader.cli.experiments import experiment\n\nexperiment({e.id}, {e.stub!r}{lang_arg})")]


def chapter(e: curriculum.Exercise, lang) -> str:
    """The chapter as markdown: the stub's docstring, or the Chinese text beside it."""
    zh = ROOT / "exercises" / f"{e.module}.zh.md"
    if pick("en", "zh", lang) == "zh" and zh.is_file():
        return zh.read_text(encoding="utf-8").strip()
    from ..learner import pristine
    doc = ast.get_docstring(ast.parse(pristine.read(e.stub))) or e.title
    title, _, rest = doc.partition("\n")
    return f"# {title.rstrip('.')}\n{rest}".strip()


def setup(lang) -> str:
    """The first code cell: nothing where the kit is installed (your clone); elsewhere (Colab) it clones the kit beside
    the notebook and installs it, fixtures and all."""
    return "\n".join([
        pick("# Set-up: does nothing where the kit is installed; on Colab it fetches and installs the kit (a minute).",
             "# 准备：已安装本套件时什么也不做；在 Colab 上会下载并安装本套件（约一分钟）。", lang),
        "try:",
        "    import grader",
        "except ImportError:",
        "    import os, subprocess, sys",
        f"    subprocess.run(['git', 'clone', '--depth', '1', {KIT_GIT_URL!r}, 'llama3-kit'], check=True)",
        "    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', 'llama3-kit'], check=True)",
        "    sys.path.insert(0, os.path.abspath('llama3-kit'))  # the install is seen by new kernels; this one needs the path",
        "    import grader",
    ])


def how_to(e: curriculum.Exercise, lang) -> str:
    return pick(
        f"**Working here.** Fill in the functions in the next cell and run it: its first line, `%%writefile {e.stub}`, "
        "saves the cell as a file beside this notebook. Then run the grading cell: it runs the same graded tests as "
        f"`pytest exercises/ -k ex{e.id:02d}`, on that file instead of `exercises/{e.stub}`. The scoreboard counts "
        f"`exercises/` only: copy the file there once it passes. (In your clone the notebook needs the kit and a "
        "Jupyter kernel: `pip install -e \".[notebooks]\"`. On Colab the set-up cell installs the kit.)",
        f"**在这里练习。** 在下一个单元格中补全函数并运行它：第一行 `%%writefile {e.stub}` 会把单元格保存为本笔记本旁边的文件。"
        f"然后运行评分单元格：它在这个文件上（代替 `exercises/{e.stub}`）运行与 `pytest exercises/ -k ex{e.id:02d}` 相同的评分测试。"
        "计分板只统计 `exercises/`：通过后把文件复制过去。（在你的克隆目录中，笔记本需要本套件和 Jupyter 内核："
        "`pip install -e \".[notebooks]\"`。在 Colab 上，准备单元格会安装本套件。）",
        lang)


def code(e: curriculum.Exercise) -> str:
    """Your current exercises/exNN_*.py (the stub until you edit it), without the chapter."""
    from .hints import without_docstring
    from ..learner import pristine

    path = workspace.exercises() / e.stub
    source = path.read_text(encoding="utf-8") if path.is_file() else pristine.read(e.stub).decode("utf-8")
    return without_docstring(source)


def grade(number: int, path: str | Path | None = None, lang: str | None = None) -> None:
    """Grade the file the code cell saved (path, default exNN_<topic>.py in the current folder) as exercise number."""
    from ..engine import grading

    e = curriculum.get(number, lang)
    source = Path(path or e.stub)
    if not source.is_file():
        raise KitError(pick(f"{source} not found: run the cell with your code first (its %%writefile line saves it)",
                            f"找不到 {source}：请先运行包含你代码的单元格（它的 %%writefile 行会保存文件）", lang))
    with tempfile.TemporaryDirectory(prefix="llama3-notebook-") as tmp:
        copy = Path(tmp) / "exercises"
        shutil.copytree(workspace.exercises(), copy, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copyfile(source, copy / e.stub)
        s = grading.score(e, grading.run([e], "exercises", root=Path(tmp), lang=lang))
    print(pick(f"{e.heading(lang)}: {s.passed}/{s.total} tests pass", f"{e.heading(lang)}：{s.passed}/{s.total} 个测试通过", lang))
    if s.done:
        print(pick(f"Done. To count it on the scoreboard, copy {source} to exercises/{e.stub}.",
                   f"完成。要计入计分板，请把 {source} 复制到 exercises/{e.stub}。", lang))
    for i, r in enumerate(s.failures):
        print(f"\n✗ {grading.test_name(r)}")
        print(r.message.strip() if i == 0 else grading.summary(r, lang))
