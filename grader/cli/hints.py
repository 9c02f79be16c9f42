"""`llama3-grader hint N`: one more hint each time. `llama3-grader solution N`: the reference, once N passes."""

import argparse
import ast
from pathlib import Path

from ..learner import curriculum, workspace
from ..i18n import LANGS, say
from ..paths import ROOT

FAILURES_LISTED = 10


def register(sub) -> None:
    p = sub.add_parser("hint", help="the next hint for an exercise (each call shows one more)")
    p.add_argument("number", type=int, nargs="?",
                   help="exercise number, e.g. 4 (default: the one the scoreboard last showed as next)")
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.set_defaults(run=run_hint)
    p = sub.add_parser("solution", help="the reference solution of an exercise, once all its tests pass")
    p.add_argument("number", type=int, help="exercise number, e.g. 4")
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.set_defaults(run=run_solution)


def run_hint(args) -> int:
    from ..learner import history
    from .. import term

    lang = args.lang
    e = curriculum.get(args.number, lang) if args.number is not None else current()
    hints = e.hints_in(lang)
    shown = min(history.hints_seen(e.module) + 1, len(hints))
    history.see_hints(e.module, shown)
    c = term.console()
    c.print(say("cli.hints.hint_title", lang=lang, heading=e.heading(lang), shown=shown, n=len(hints)), style="bold")
    for i, hint in enumerate(hints[:shown], 1):
        c.print(f"\n{i}. {hint}", markup=False)
    c.print()
    if shown < len(hints):
        c.print(say("cli.hints.hint_again", lang=lang, id=e.id), markup=False)
    else:
        c.print(say("cli.hints.hint_last", lang=lang, chapter=e.chapter(lang), id=e.id), markup=False)
    return 0


def current() -> curriculum.Exercise:
    """The exercise the scoreboard last showed as next; before any scoreboard, the first exercise with no first-passed
    day (the last one when all have one). The progress file is what the last grading saw: this costs no grading."""
    from ..learner import history

    progress = history.load()
    by_module = {e.module: e for e in curriculum.exercises()}
    if progress["next"] in by_module:
        return by_module[progress["next"]]
    return next((e for e in curriculum.exercises() if e.module not in progress["first_passed"]),
                curriculum.exercises()[-1])


def run_solution(args) -> int:
    from ..engine import grading
    from ..learner import history
    from .. import term

    lang = args.lang
    e = curriculum.get(args.number, lang)
    s = grading.score(e, grading.run([e], "exercises", lang=lang))
    c = term.console()
    if not s.done:
        c.print(say("cli.hints.not_passed", lang=lang, heading=e.heading(lang), passed=s.passed, total=s.total),
                markup=False)
        c.print(say("cli.hints.still_failing", lang=lang), markup=False)
        for r in s.failures[:FAILURES_LISTED]:
            c.print(f"  {grading.test_name(r)}: {grading.summary(r, lang)}", markup=False)
        if len(s.failures) > FAILURES_LISTED:
            c.print(say("cli.hints.more_failures", lang=lang, more=len(s.failures) - FAILURES_LISTED))
        c.print(say("cli.hints.details", lang=lang, id=e.id), markup=False)
        return 1
    history.record_passes([e.module])
    c.print(say("cli.hints.passes", lang=lang, heading=e.heading(lang), passed=s.passed, total=s.total),
            style="bold green")
    show_code(c, say("cli.hints.your_code", lang=lang), workspace.exercises() / e.stub)
    show_code(c, say("cli.hints.reference", lang=lang), ROOT / "solutions" / e.stub)
    return 0


def show_code(c, title: str, path: Path) -> None:
    """The file without its module docstring (the chapter), highlighted in a terminal."""
    code = without_docstring(path.read_text(encoding="utf-8"))
    c.print()
    c.print(f"── {title}: {workspace.show(path)} ──", style="bold", markup=False)
    if c.is_terminal:
        from rich.syntax import Syntax
        c.print(Syntax(code, "python", theme="ansi_dark", background_color="default"))
    else:
        c.print(code, markup=False)


def without_docstring(source: str) -> str:
    """source after its module docstring; the whole source when it has none or does not parse."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return source
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return "\n".join(source.splitlines()[body[0].end_lineno:]).strip("\n") + "\n"
    return source
