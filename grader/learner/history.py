"""Your progress file, .llama3-progress.json in the kit's folder (git-ignored): the day each exercise first passed,
how many of its hints you have seen, and the exercise the scoreboard last showed as next. Written atomically; a
missing or corrupt file reads as empty, and the next grading writes it afresh, after keeping the corrupt one."""

import datetime
import json
import os
import sys

from . import workspace
from ..files import write_atomically
from ..i18n import say


def load() -> dict:
    """{"first_passed": {module: "YYYY-MM-DD"}, "hints": {module: count}, "next": module or None}; empty on any
    problem with the file."""
    empty = {"first_passed": {}, "hints": {}, "next": None}
    try:
        data = json.loads(workspace.history().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return empty
    if not isinstance(data, dict):
        return empty
    first = data.get("first_passed")
    hints = data.get("hints")
    return {
        "first_passed": {k: v for k, v in first.items() if isinstance(v, str)} if isinstance(first, dict) else {},
        "hints": {k: v for k, v in hints.items() if type(v) is int and v >= 0} if isinstance(hints, dict) else {},
        "next": data.get("next") if isinstance(data.get("next"), str) else None,
    }


def save(data: dict) -> None:
    """Write atomically (a crash never leaves half a file), after keeping a corrupt file as it was. A folder that
    cannot be written is reported on stderr, not raised: progress is a convenience."""
    path = workspace.history()
    text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    try:
        keep_if_corrupt(path)
        write_atomically(path, text.encode("utf-8"))
    except OSError as e:
        print(say("learner.history.not_saved", path=path, why=e), file=sys.stderr)


def keep_if_corrupt(path) -> None:
    """A progress file that does not read as a JSON object is renamed to <name>.corrupt-<time>, and a line says so."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict):
        return
    kept = path.with_name(f"{path.name}.corrupt-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    os.replace(path, kept)
    print(say("learner.history.kept_corrupt", path=path.name, kept=kept.name), file=sys.stderr)


def record_passes(modules: list[str]) -> dict[str, str]:
    """Note today as the first-passed day of each module that has none yet; returns every first-passed day."""
    data = load()
    today = datetime.date.today().isoformat()
    for module in modules:
        data["first_passed"].setdefault(module, today)
    save(data)
    return data["first_passed"]


def record_next(module: str | None) -> None:
    """Note the exercise the scoreboard shows as next (None when every one passes)."""
    data = load()
    data["next"] = module
    save(data)


def hints_seen(module: str) -> int:
    return load()["hints"].get(module, 0)


def see_hints(module: str, count: int) -> None:
    data = load()
    data["hints"][module] = count
    save(data)
