"""Helpers for the checkpoint, verify and bench tests: llama3-grader in this process, and small checkpoint folders."""

import json
import shutil
from pathlib import Path

import pytest

from grader import cli
from grader.paths import MODELS, TOKENIZER

PROMPT42 = [128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220]


def grader(*args: str) -> int:
    """llama3-grader ARGS in this process; its exit code (read its output with capsys)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(a) for a in args])
    return exit_.value.code or 0


def one_line_error(capsys, *args: str) -> str:
    """Run llama3-grader ARGS, expect the one-line error of a person's mistake (exit code 2), return the line."""
    code = grader(*args)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, f"exit code {code}, stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("llama3-grader: "), f"not one line: {err!r}"
    assert "Traceback" not in err
    return lines[0]


def copy_tiny(name: str, to: Path) -> Path:
    """A copy of a tiny fixture checkpoint (Meta layout) to break."""
    shutil.copytree(MODELS / name, to)
    return to


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    path.write_text(json.dumps(data))


__all__ = ["PROMPT42", "TOKENIZER", "copy_tiny", "edit_json", "grader", "one_line_error"]
