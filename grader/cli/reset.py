"""`llama3-grader reset N`: put exercise N's stub back as shipped, after keeping a copy of your file."""

import argparse
import datetime
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..learner import curriculum, workspace
from ..errors import KitError
from ..i18n import LANGS, pick


def register(sub) -> None:
    p = sub.add_parser("reset", help="restore an exercise's stub (your file is backed up first)")
    p.add_argument("number", type=int, help="exercise number, e.g. 4")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..learner import pristine

    lang = args.lang
    e = curriculum.get(args.number, lang)
    target = workspace.exercises() / e.stub
    stub = pristine.read(e.stub)
    if target.is_file() and target.read_bytes() == stub:
        print(pick(f"exercises/{e.stub} is already the original stub: nothing to do.",
                   f"exercises/{e.stub} 已经是原始存根，无需操作。", lang))
        return 0
    if not args.yes and not confirm(pick(f"Replace exercises/{e.stub} with the original stub? (your version is kept in "
                                         f"{workspace.backups().name}/) [y/N] ",
                                         f"用原始存根替换 exercises/{e.stub}？（你的版本会保存在 {workspace.backups().name}/ 中）[y/N] ", lang), lang):
        print(pick("Nothing changed.", "未做任何修改。", lang))
        return 1
    backup = back_up(target) if target.is_file() else None
    write_atomically(target, stub)
    if backup:
        print(pick(f"Restored exercises/{e.stub}; your version is in {workspace.show(backup)}",
                   f"已恢复 exercises/{e.stub}；你的版本保存在 {workspace.show(backup)}", lang))
    else:
        print(pick(f"Restored exercises/{e.stub}.", f"已恢复 exercises/{e.stub}。", lang))
    return 0


def confirm(question: str, lang) -> bool:
    if not sys.stdin.isatty():
        raise KitError(pick("reset asks before it replaces your file: run it in a terminal, or add --yes",
                            "reset 在替换你的文件前需要确认：请在终端中运行，或加上 --yes", lang))
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


def write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
