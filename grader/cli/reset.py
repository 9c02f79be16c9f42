"""`llama3-grader reset N`: put exercise N's stub back as shipped, after keeping a copy of your file; its hints start
over."""

import argparse
import datetime
import shutil
import sys
from pathlib import Path

from ..learner import curriculum, workspace
from ..errors import KitError
from ..files import write_atomically
from ..i18n import LANGS, say


def register(sub) -> None:
    p = sub.add_parser("reset", help="restore an exercise's stub (your file is backed up first)")
    p.add_argument("number", type=int, help="exercise number, e.g. 4")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..learner import history, pristine

    lang = args.lang
    e = curriculum.get(args.number, lang)
    target = workspace.exercises() / e.stub
    stub = pristine.read(e.stub)
    if target.is_file() and target.read_bytes() == stub:
        history.see_hints(e.module, 0)
        print(say("cli.reset.already", lang=lang, stub=e.stub))
        return 0
    question = say("cli.reset.confirm", lang=lang, stub=e.stub, backups=workspace.backups().name)
    if not args.yes and not confirm(question, lang):
        print(say("cli.reset.unchanged", lang=lang))
        return 1
    backup = back_up(target) if target.is_file() else None
    try:
        write_atomically(target, stub)
    except OSError as error:
        raise KitError(say("cli.reset.not_written", lang=lang, path=workspace.show(target),
                           why=error.strerror or error)) from None
    history.see_hints(e.module, 0)
    if backup:
        print(say("cli.reset.restored_backup", lang=lang, stub=e.stub, backup=workspace.show(backup)))
    else:
        print(say("cli.reset.restored", lang=lang, stub=e.stub))
    return 0


def confirm(question: str, lang) -> bool:
    if not sys.stdin.isatty():
        raise KitError(say("cli.reset.needs_terminal", lang=lang))
    return input(question).strip().lower() in ("y", "yes", "是")


def back_up(path: Path) -> Path:
    """Copy path to the backups folder as <name>-<timestamp>.py; returns the copy."""
    folder = workspace.backups()
    folder.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    copy = folder / f"{path.stem}-{stamp}{path.suffix}"
    n = 1
    while copy.exists():
        n += 1
        copy = folder / f"{path.stem}-{stamp}-{n}{path.suffix}"
    shutil.copy2(path, copy)
    return copy

