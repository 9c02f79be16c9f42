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
from .. import i18n
from ..i18n import say

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
        return self.title_zh if i18n.lang(lang) == "zh" else self.title

    def hints_in(self, lang: str | None = None) -> tuple[str, ...]:
        return self.hints_zh if i18n.lang(lang) == "zh" else self.hints

    def chapter(self, lang: str | None = None) -> str:
        """The file of the exercise's chapter in exercises/: the stub (its docstring) in English, exNN_<topic>.zh.md
        in Chinese."""
        return f"{self.module}.zh.md" if i18n.lang(lang) == "zh" else self.stub

    def heading(self, lang: str | None = None) -> str:
        """'Exercise 4 · RMSNorm'"""
        return say("learner.curriculum.heading", lang=lang, id=self.id, title=self.title_in(lang))


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
    raise KitError(say("learner.curriculum.no_exercise", lang=lang, number=number, last=last))
