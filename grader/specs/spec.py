"""What a spec is: one exercise's golden calls, and its named mistakes, each wrong function beside its message; and
the drivers that run a class, a loader or the cached path the same way on the reference and on the learner's code."""

from collections.abc import Callable
from dataclasses import dataclass, field

from ..i18n import lang

_DRIVERS: dict[str, Callable] = {}


@dataclass(frozen=True)
class Mistake:
    """A common mistake: a deliberately wrong variant of one reference function, and what to tell the learner."""

    id: str
    module: str  # "ex06_rope"
    function: str  # "apply_rope"
    en: str
    zh: str
    variant: Callable

    def message(self, language: str | None = None) -> str:
        return self.zh if lang(language) == "zh" else self.en


@dataclass
class Spec:
    """One exercise: the function that lists its golden calls on a model, and its named mistakes."""

    module: str  # "ex06_rope", as in exercises/ and solutions/
    mistakes: list[Mistake] = field(default_factory=list)
    _cases: Callable | None = None

    def cases(self, fn: Callable) -> Callable:
        """Decorator: fn(model, acts) lists this exercise's golden calls on one model."""
        self._cases = fn
        return fn

    def calls(self, model, acts: dict) -> list:
        return self._cases(model, acts) if self._cases else []

    def mistake(self, function: str, mistake_id: str, *, en: str, zh: str) -> Callable:
        """Decorator: the function below is a wrong variant of `function`; a result it gives is named with en / zh."""
        def register(variant: Callable) -> Callable:
            self.mistakes.append(Mistake(mistake_id, self.module, function, en, zh, variant))
            return variant

        return register


def driver(fn: Callable) -> Callable:
    """Decorator: fn(target, **inputs) runs a class, a loader or the cached path; golden calls name it."""
    _DRIVERS[fn.__name__] = fn
    return fn


def find_driver(name: str) -> Callable:
    return _DRIVERS[name]
