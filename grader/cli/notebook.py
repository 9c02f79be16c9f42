"""`llama3-grader notebook N` (or --all): an exercise as a Jupyter notebook: the chapter, a set-up cell that
installs the kit where it is missing (Colab), a cell that picks the device (a GPU where there is one), your code, a
grading cell. And use_device() and grade(), which those cells call.

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
from ..files import make_folder, write_atomically
from .. import i18n
from ..i18n import LANGS, say
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
        raise KitError(say("cli.notebook.number_and_all", lang=lang))
    if not args.all and args.number is None:
        raise KitError(say("cli.notebook.number_or_all", lang=lang))
    chosen = curriculum.exercises() if args.all else [curriculum.get(args.number, lang)]
    out = make_folder((args.out or workspace.notebooks()).expanduser())
    for e in chosen:
        path = out / file_name(e, lang)
        if path.exists():
            print(say("cli.notebook.kept", lang=lang, path=path))
            continue
        write_atomically(path, nbformat.writes(build(e, lang)).encode("utf-8"))
        print(say("cli.notebook.wrote", lang=lang, path=path))
    return 0


def file_name(e: curriculum.Exercise, lang) -> str:
    return say("cli.notebook.file_name", lang=lang, module=e.module)


def build(e: curriculum.Exercise, lang):
    """The notebook, validated against nbformat v4."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    lang_arg = ", lang='zh'" if i18n.lang(lang) == "zh" else ""
    nb = new_notebook(metadata=KERNEL, cells=[
        new_markdown_cell(chapter(e, lang)),
        new_markdown_cell(how_to(e, lang)),
        new_code_cell(setup(lang)),
        new_code_cell(device_cell(lang, lang_arg)),
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
    return [new_markdown_cell(say("cli.notebook.experiment", lang=lang)),
            new_code_cell(f"from grader.cli.experiments import experiment\n\nexperiment({e.id}, {e.stub!r}{lang_arg})")]


def chapter(e: curriculum.Exercise, lang) -> str:
    """The chapter as markdown: the stub's docstring, or the Chinese text beside it."""
    zh = ROOT / "exercises" / f"{e.module}.zh.md"
    if i18n.lang(lang) == "zh" and zh.is_file():
        return zh.read_text(encoding="utf-8").strip()
    from ..learner import pristine
    doc = ast.get_docstring(ast.parse(pristine.read(e.stub))) or e.title
    title, _, rest = doc.partition("\n")
    return f"# {title.rstrip('.')}\n{rest}".strip()


def setup(lang) -> str:
    """The first code cell: nothing where the kit is installed (your clone); elsewhere (Colab) it clones the kit beside
    the notebook and installs it, fixtures and all."""
    return "\n".join([
        say("cli.notebook.setup", lang=lang),
        "try:",
        "    import grader",
        "except ImportError:",
        "    import os, subprocess, sys",
        f"    subprocess.run(['git', 'clone', '--depth', '1', {KIT_GIT_URL!r}, 'llama3-kit'], check=True)",
        "    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', 'llama3-kit'], check=True)",
        "    sys.path.insert(0, os.path.abspath('llama3-kit'))  "
        "# the install is seen by new kernels; this one needs the path",
        "    import grader",
    ])


def device_cell(lang, lang_arg: str) -> str:
    """The second code cell: the device the grading and experiment cells run on, printed."""
    return "\n".join([say("cli.notebook.device_comment", lang=lang),
                      "from grader.cli.notebook import use_device", "",
                      f"DEVICE = use_device({lang_arg.removeprefix(', ')})"])


def use_device(lang: str | None = None) -> str:
    """The notebook's device: LLAMA3_KIT_DEVICE, else auto (CUDA, then MPS, then the CPU), resolved and kept in
    LLAMA3_KIT_DEVICE, where this kernel's grading (the pytest plugin) and experiments read it; printed."""
    import os

    from .. import devices
    from .on_device import gpu_name

    os.environ.setdefault("LLAMA3_KIT_DEVICE", "auto")
    device = devices.choice()
    os.environ["LLAMA3_KIT_DEVICE"] = device
    print(say("cli.notebook.device", lang=lang, device=gpu_name(device)))
    return device


def how_to(e: curriculum.Exercise, lang) -> str:
    return say("cli.notebook.how_to", lang=lang, stub=e.stub, id=e.id)


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
        raise KitError(say("cli.notebook.not_found", lang=lang, source=source))
    with tempfile.TemporaryDirectory(prefix="llama3-notebook-") as tmp:
        copy = Path(tmp) / "exercises"
        shutil.copytree(workspace.exercises(), copy, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copyfile(source, copy / e.stub)
        s = grading.score(e, grading.run([e], "exercises", root=Path(tmp), lang=lang))
    print(say("cli.notebook.graded", lang=lang, heading=e.heading(lang), passed=s.passed, total=s.total))
    if s.done:
        print(say("cli.notebook.done", lang=lang, source=source, stub=e.stub))
    for i, r in enumerate(s.failures):
        print(f"\n✗ {grading.test_name(r)}")
        print(r.message.strip() if i == 0 else grading.summary(r, lang))
