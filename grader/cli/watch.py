"""`llama3-grader watch`: grade the first unfinished exercise on every save in exercises/, show its first
failing test, move on when it passes. q or Ctrl-C quits."""

import argparse
import contextlib
import os
import queue
import sys
import threading
import time

from ..learner import curriculum, workspace
from ..i18n import LANGS, say

SETTLE_SECONDS = 0.1  # editors write a file in several steps: wait for the last before grading


def register(sub) -> None:
    p = sub.add_parser("watch", help="re-grade the current exercise every time you save a file in exercises/")
    p.add_argument("--poll", action="store_true",
                   help="check files for changes twice a second instead of using file notifications "
                        "(for folders where notifications do not arrive, e.g. some network or container mounts)")
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..learner import changes
    from .. import term

    lang = args.lang
    c = term.console()
    exercises = curriculum.exercises()
    events: queue.Queue = queue.Queue()
    how = changes.watch(workspace.exercises(), events, args.poll)
    try:
        with keys(events):
            found = first_unfinished(exercises, 0, c, lang)
            while found is not None:
                index, score, seconds = found
                show(c, score, seconds, how, lang)
                if wait(events) == "quit":
                    return 0
                found = first_unfinished(exercises, index, c, lang)
    except KeyboardInterrupt:
        return 0
    core = len(curriculum.track("core"))  # the extras come after the core (higher numbers): watch reaches them last
    c.print(say("cli.watch.all_pass", lang=lang, core=core, extras=len(exercises) - core), style="bold green")
    return 0


def grade(exercise, lang):
    """(score, seconds it took) of one exercise; notes the day when it passes."""
    from ..engine import grading
    from ..learner import history

    started = time.monotonic()
    score = grading.score(exercise, grading.run([exercise], "exercises", lang=lang))
    if score.done:
        history.record_passes([exercise.module])
    return score, time.monotonic() - started


def first_unfinished(exercises, start: int, c, lang):
    """(index, score, seconds) of the first exercise from start on that does not pass; None when all do. Like the
    scoreboard, it notes that exercise as the next one (what `hint` gives)."""
    from ..learner import history

    for index in range(start, len(exercises)):
        score, seconds = grade(exercises[index], lang)
        if not score.done:
            history.record_next(exercises[index].module)
            return index, score, seconds
        c.print(say("cli.watch.passes", lang=lang, heading=score.exercise.heading(lang), passed=score.passed,
                    total=score.total), style="green", markup=False)
    history.record_next(None)
    return None


def show(c, score, seconds: float, how: str, lang) -> None:
    from ..engine import grading

    e = score.exercise
    if c.is_terminal:
        c.clear()
    else:
        c.print("-" * 72)
    c.print(say("cli.watch.graded", lang=lang, heading=e.heading(lang), passed=score.passed, total=score.total,
                seconds=seconds), style="bold", markup=False)
    c.print()
    if score.failures:
        first = score.failures[0]
        c.print(f"✗ {grading.test_name(first)}", style="red", markup=False)
        c.print(first.message.strip(), markup=False)
    else:
        c.print(say("cli.watch.all_skipped", lang=lang), markup=False)
    if len(score.failures) > 1:
        c.print(say("cli.watch.more_failing", lang=lang, more=len(score.failures) - 1), markup=False)
    c.print()
    c.print(say("cli.watch.save_to_grade", lang=lang, stub=e.stub, id=e.id, how=say(f"cli.watch.how_{how}", lang=lang)),
            style="dim", markup=False)


def wait(events: queue.Queue) -> str:
    """Block until a save ("saved") or q ("quit"); saves that follow within SETTLE_SECONDS count as one."""
    while True:
        try:
            kind, value = events.get(timeout=0.5)
        except queue.Empty:
            continue
        if kind == "key" and value.lower() == "q":
            return "quit"
        if kind == "saved":
            time.sleep(SETTLE_SECONDS)
            with contextlib.suppress(queue.Empty):
                while True:
                    kind, value = events.get_nowait()
                    if kind == "key" and value.lower() == "q":
                        return "quit"
            return "saved"


@contextlib.contextmanager
def keys(events: queue.Queue):
    """Within the block, each key pressed in the terminal is put on events as ("key", char), without Enter."""
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read():
        while True:
            try:
                char = os.read(fd, 1)
            except OSError:  # the terminal is gone
                return
            if not char:
                return
            events.put(("key", char.decode(errors="replace")))

    threading.Thread(target=read, daemon=True).start()
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
