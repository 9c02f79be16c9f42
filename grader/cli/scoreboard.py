"""`llama3-grader` with no verb: grade every exercise now and show the scoreboard, a progress bar, the 42 line
and what to do next."""

import contextlib
import json

from ..learner import curriculum
from ..i18n import LANGS, say

STATUS_STYLE = {"passed": "green", "failing": "red", "not started": "dim"}


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print the scoreboard as one JSON object")
    p.add_argument("--check", action="store_true",
                   help="exit with code 1 unless every exercise passes (for scripts; without it the exit code is 0 "
                        "once grading ran)")
    p.add_argument("--impl", help="exercises (yours, the default) or solutions (the reference); or set LLAMA3_KIT_IMPL")
    p.add_argument("--lang", choices=LANGS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.add_argument("--device", help="grade on cpu (the default), cuda, mps or auto; or set LLAMA3_KIT_DEVICE")


def run(args) -> int:
    from ..engine import fortytwo, grading, impl as impls
    from ..learner import history
    from .. import progress

    impl = impls.choice(args.impl)
    spinner = progress.console.status(say("cli.scoreboard.grading", lang=args.lang))
    with spinner if progress.console.is_terminal else contextlib.nullcontext():
        results = grading.run(impl=impl, lang=args.lang, device=args.device)
    scores = [grading.score(e, results) for e in curriculum.track("core")]
    # a second track: never holds back the core
    extras = [grading.score(e, results) for e in curriculum.track("extras")]
    if impl == "exercises":
        days = history.record_passes([s.exercise.module for s in scores + extras if s.done])
        history.record_next(next((s.exercise.module for s in scores + extras if not s.done), None))
    else:
        days = {}
    fortytwo_status = fortytwo.status(results)
    if args.json:
        print(json.dumps(as_json(scores, days, fortytwo_status, impl, args.lang, extras), ensure_ascii=False))
    else:
        show(scores, days, fortytwo_status, impl, args.lang, extras)
    return 1 if args.check and not all(s.done for s in scores) else 0


def as_json(scores, days, fortytwo_status, impl, lang, extras=()) -> dict:
    """The core's exercises and all_passed (about the core only), the 42 status, and the extras apart."""
    def entries(track):
        return [{"id": s.exercise.id, "title": s.exercise.title_in(lang), "passed": s.passed, "total": s.total,
                 "skipped": s.skipped, "status": s.status, "first_passed": days.get(s.exercise.module)} for s in track]

    return {
        "impl": impl,
        "exercises": entries(scores),
        "all_passed": all(s.done for s in scores),
        "fortytwo": fortytwo_status,
        "extras": entries(extras),
    }


def show(scores, days, fortytwo_status, impl, lang, extras=()) -> None:
    from ..engine import fortytwo
    from .. import term

    c = term.console()
    done = sum(s.done for s in scores)
    whose = say("cli.scoreboard.whose_exercises" if impl == "exercises" else "cli.scoreboard.whose_solutions",
                lang=lang)
    c.print(say("cli.scoreboard.title", lang=lang, whose=whose), style="bold", markup=False)
    c.print()
    if c.is_terminal:
        c.print(_table(scores, days, lang))
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        row = Table.grid(padding=(0, 1))
        row.add_row(ProgressBar(total=len(scores), completed=done, width=30), _passing(done, len(scores), lang))
        c.print(row)
    else:
        c.print(_plain_table(scores, days, lang), markup=False)
        c.print()
        c.print(f"{term.bar(done, len(scores))} {_passing(done, len(scores), lang)}", markup=False)
    c.print()
    c.print(fortytwo.line(fortytwo_status, lang), markup=False)
    c.print(fortytwo.trained_line(fortytwo_status["trained"], lang), markup=False)
    c.print()
    if extras:
        c.print(say("cli.scoreboard.extras_title", lang=lang), style="bold", markup=False)
        if c.is_terminal:
            c.print(_table(extras, days, lang))
        else:
            c.print(_plain_table(extras, days, lang), markup=False)
        c.print()
    for line in next_steps(scores, fortytwo_status, impl, lang, extras):
        c.print(line, markup=False)


def _status(status: str, lang) -> str:
    return say(f"cli.scoreboard.status_{status.replace(' ', '_')}", lang=lang)


def _passing(done: int, total: int, lang) -> str:
    return say("cli.scoreboard.passing", lang=lang, done=done, total=total)


def _headers(lang) -> list[str]:
    return ["#", say("cli.scoreboard.header_exercise", lang=lang), say("cli.scoreboard.header_tests", lang=lang),
            say("cli.scoreboard.header_status", lang=lang), say("cli.scoreboard.header_first_passed", lang=lang)]


def _table(scores, days, lang):
    from rich import box
    from rich.table import Table

    t = Table(*_headers(lang), box=box.SIMPLE_HEAD)
    t.columns[0].justify = t.columns[2].justify = "right"
    for s in scores:
        t.add_row(str(s.exercise.id), s.exercise.title_in(lang), f"{s.passed}/{s.total}",
                  f"[{STATUS_STYLE[s.status]}]{_status(s.status, lang)}[/]", days.get(s.exercise.module, ""))
    return t


def _plain_table(scores, days, lang) -> str:
    from rich.cells import cell_len

    from ..term import pad

    rows = [_headers(lang)] + [[str(s.exercise.id), s.exercise.title_in(lang), f"{s.passed}/{s.total}",
                                _status(s.status, lang), days.get(s.exercise.module, "")] for s in scores]
    widths = [max(cell_len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {0, 2}
    lines = []
    for r in rows:
        cells = [" " * (w - cell_len(v)) + v if i in right else pad(v, w) for i, (v, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def next_steps(scores, fortytwo_status, impl, lang, extras=()) -> list[str]:
    """What to do now: the first unfinished exercise, or, when all pass, the real weights and the extras."""
    from ..engine import grading

    unfinished = [s for s in scores if not s.done]
    if unfinished:
        s = unfinished[0]
        e = s.exercise
        lines = [say("cli.scoreboard.next", lang=lang, heading=e.heading(lang), stub=e.stub)]
        if s.failures:
            lines.append("  " + grading.summary(s.failures[0], lang))
        lines.append(say("cli.scoreboard.next_tools", lang=lang, id=e.id))
        return lines
    n = len(scores)
    lines = [say("cli.scoreboard.all_pass", lang=lang, n=n)]
    if impl != "exercises":
        return lines
    lines.append(say("cli.scoreboard.complete", lang=lang))
    lines.append(say("cli.scoreboard.run_it", lang=lang))
    if not fortytwo_status["reproduced"]:
        lines.append(say("cli.scoreboard.answer_42", lang=lang))
    lines.append(say("cli.scoreboard.measure_it", lang=lang))
    extra = next((s.exercise for s in extras if not s.done), None)
    if extra is not None:
        lines.append(say("cli.scoreboard.extras_next", lang=lang, heading=extra.heading(lang), stub=extra.stub))
    return lines
