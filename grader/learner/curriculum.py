"""The curriculum: the exercises with their titles, hints and track (the core, or the extras after it), read from
curriculum.toml."""

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from ..errors import KitError
from ..i18n import pick

TOML = Path(__file__).with_name("curriculum.toml")


@dataclass(frozen=True)
class Exercise:
    id: int
    module: str  # "ex04_rms_norm"
    title: str
    title_zh: str
    hints: tuple[str, ...]
    hints_zh: tuple[str, ...]
    track: str = "core"  # "core" (ends at 42) or "extras" (after the core)

    @property
    def stub(self) -> str:
        """The learner's file name: ex04_rms_norm.py"""
        return f"{self.module}.py"

    @property
    def tests(self) -> str:
        """The graded tests' file name: test_ex04_rms_norm.py"""
        return f"test_{self.module}.py"

    def title_in(self, lang: str | None = None) -> str:
        return pick(self.title, self.title_zh, lang)

    def hints_in(self, lang: str | None = None) -> tuple[str, ...]:
        return self.hints_zh if pick("en", "zh", lang) == "zh" else self.hints

    def heading(self, lang: str | None = None) -> str:
        """'Exercise 4 · RMSNorm'"""
        return pick(f"Exercise {self.id} · {self.title}", f"练习 {self.id} · {self.title_zh}", lang)


@functools.cache
def exercises() -> tuple[Exercise, ...]:
    entries = tomllib.loads(TOML.read_text(encoding="utf-8"))["exercise"]
    return tuple(Exercise(e["id"], e["module"], e["title"], e["title_zh"], tuple(e["hints"]), tuple(e["hints_zh"]),
                          e.get("track", "core")) for e in sorted(entries, key=lambda e: e["id"]))


def track(name: str) -> tuple[Exercise, ...]:
    """The exercises of one track, "core" or "extras", in order."""
    return tuple(e for e in exercises() if e.track == name)


def get(number: int, lang: str | None = None) -> Exercise:
    """The exercise with this number; a KitError that lists the valid ones otherwise."""
    for exercise in exercises():
        if exercise.id == number:
            return exercise
    last = exercises()[-1].id
    raise KitError(pick(f"there is no exercise {number}: the exercises are numbered 1 to {last} (run llama3-grader to see them)",
                        f"没有练习 {number}：练习编号为 1 到 {last}（运行 llama3-grader 查看全部）", lang))
