"""`llama3-grader` with no verb: grade every exercise now and show the scoreboard, a progress bar, the 42 line
and what to do next."""

import contextlib
import json

from ..learner import curriculum
from ..i18n import LANGS, pick

STATUS_ZH = {"passed": "已通过", "failing": "未通过", "not started": "未开始"}
STATUS_STYLE = {"passed": "green", "failing": "red", "not started": "dim"}


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print the scoreboard as one JSON object")
    p.add_argument("--check", action="store_true",
                   help="exit with code 1 unless every exercise passes (for scripts; without it the exit code is 0 once grading ran)")
    p.add_argument("--impl", help="exercises (yours, the default) or solutions (the reference); or set LLAMA3_KIT_IMPL")
    p.add_argument("--lang", choices=LANGS, help="en or zh (or set LLAMA3_KIT_LANG)")


def run(args) -> int:
    from ..engine import fortytwo, grading, impl as impls
    from ..learner import history
    from .. import progress

    impl = impls.choice(args.impl)
    spinner = progress.console.status(pick("grading every exercise…", "正在为所有练习评分…", args.lang))
    with spinner if progress.console.is_terminal else contextlib.nullcontext():
        results = grading.run(impl=impl, lang=args.lang)
    scores = [grading.score(e, results) for e in curriculum.track("core")]
    extras = [grading.score(e, results) for e in curriculum.track("extras")]  # a second track: never holds back the core
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
    whose = pick("your code in exercises/", "你在 exercises/ 中的代码", lang) if impl == "exercises" \
        else pick("the reference in solutions/", " solutions/ 中的参考实现", lang)
    c.print(pick(f"llama3-kit: grading {whose}", f"llama3-kit：评分对象是{whose}", lang), style="bold", markup=False)
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
        c.print(pick("After the core", "核心练习之后", lang), style="bold", markup=False)
        if c.is_terminal:
            c.print(_table(extras, days, lang))
        else:
            c.print(_plain_table(extras, days, lang), markup=False)
        c.print()
    for line in next_steps(scores, fortytwo_status, impl, lang, extras):
        c.print(line, markup=False)


def _status(status: str, lang) -> str:
    return pick(status, STATUS_ZH[status], lang)


def _passing(done: int, total: int, lang) -> str:
    return pick(f"{done}/{total} exercises pass", f"{done}/{total} 个练习已通过", lang)


def _headers(lang) -> list[str]:
    return ["#", pick("Exercise", "练习", lang), pick("Tests", "测试", lang), pick("Status", "状态", lang),
            pick("First passed", "首次通过", lang)]


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
        lines = [pick(f"Next: {e.heading(lang)} (exercises/{e.stub})", f"下一步：{e.heading(lang)}（exercises/{e.stub}）", lang)]
        if s.failures:
            lines.append("  " + grading.summary(s.failures[0], lang))
        lines.append(pick(f"  Re-grade on every save: llama3-grader watch · stuck? llama3-grader hint {e.id}",
                          f"  每次保存自动评分：llama3-grader watch · 卡住了？llama3-grader hint {e.id}", lang))
        return lines
    n = len(scores)
    lines = [pick(f"All {n} core exercises pass: every test was re-run just now, none taken from the progress file.",
                  f"全部 {n} 个核心练习都已通过：所有测试刚刚重新运行过，没有沿用进度文件中的记录。", lang)]
    if impl != "exercises":
        return lines
    lines.append(pick("Your Llama 3 is complete. Next:", "你的 Llama 3 完成了。接下来：", lang))
    lines.append(pick("  - run it: llama3-grader generate", "  - 运行它：llama3-grader generate", lang))
    if not fortytwo_status["reproduced"]:
        lines.append(pick("  - on the real Meta-Llama-3-8B, make it answer 42: docs/real-weights.md",
                          "  - 在真实的 Meta-Llama-3-8B 上让它回答 42：docs/real-weights.md", lang))
    lines.append(pick("  - measure it: llama3-grader bench; and see what comes after the core (README.md, \"After the core\")",
                      "  - 测一测速度：llama3-grader bench；核心之后还有什么，见 README.zh.md 的“核心练习之后”", lang))
    extra = next((s.exercise for s in extras if not s.done), None)
    if extra is not None:
        lines.append(pick(f"  - the extras, after the core: {extra.heading(lang)} (exercises/{extra.stub})",
                          f"  - 核心之后的附加练习：{extra.heading(lang)}（exercises/{extra.stub}）", lang))
    return lines
