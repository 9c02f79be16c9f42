"""The one indirection that chooses the implementation under test: exercises/ (the learner's) or solutions/."""

import functools
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from ..errors import KitError

IMPLS = ("exercises", "solutions")


def choice(option: str | None = None) -> str:
    """--impl, else LLAMA3_KIT_IMPL, else exercises."""
    impl = option or os.environ.get("LLAMA3_KIT_IMPL") or "exercises"
    if impl not in IMPLS:
        raise KitError(f"unknown implementation {impl!r}: use --impl exercises or --impl solutions")
    return impl


def module(impl: str, name: str) -> ModuleType:
    """impl's module for an exercise, e.g. module("exercises", "ex04_rms_norm")."""
    return importlib.import_module(f"{impl}.{name}")


def _number(module_name: str) -> int:
    return int(module_name.rsplit(".", 1)[-1][2:4])


def exercise_modules(impl: str) -> list[str]:
    """impl's exercise modules in order: ["ex01_tokenizer", "ex02_checkpoint", ...]."""
    return sorted(p.stem for p in Path(importlib.import_module(impl).__file__).parent.glob("ex[0-9][0-9]_*.py"))


@contextmanager
def reference_for_unimportable(impl: str, name: str):
    """Within the block, every exercise before name whose module raises when imported (a syntax error, an import of
    a library the kit does not have) is the reference module instead, so that importing name's module does not fail
    for an earlier exercise's fault. Yields {module: error} of those replaced; afterwards they are unimported again."""
    package = importlib.import_module(impl)
    replaced: dict[str, Exception] = {}
    for earlier in exercise_modules(impl):
        if _number(earlier) >= _number(name):
            break
        try:
            module(impl, earlier)
        except Exception as e:  # whatever it raised, exercise `earlier`'s own tests report it
            replaced[earlier] = e
            sys.modules[f"{impl}.{earlier}"] = module("solutions", earlier)
            setattr(package, earlier, sys.modules[f"{impl}.{earlier}"])
    try:
        yield replaced
    finally:
        for earlier in replaced:
            del sys.modules[f"{impl}.{earlier}"]
            delattr(package, earlier)


def graded_module(impl: str, name: str) -> ModuleType:
    """impl's module for an exercise, imported with earlier exercises that cannot be imported replaced by the
    reference: a syntax error in exercise 4 fails exercise 4 only. The module's own import errors propagate."""
    with reference_for_unimportable(impl, name):
        return module(impl, name)


@contextmanager
def isolated(mod: ModuleType):
    """Within the block, names mod imported from earlier exercises are the reference ones, so that only
    mod's own code is graded: a broken exercise 4 does not fail exercise 10."""
    pkg, _, name = mod.__name__.partition(".")
    saved = {}
    for attr, value in vars(mod).items():
        source = getattr(value, "__module__", None) or ""
        if source.startswith(pkg + ".ex") and source != mod.__name__ and _number(source) < _number(name):
            saved[attr] = value
    reference = {attr: getattr(importlib.import_module("solutions." + saved[attr].__module__.split(".", 1)[1]), attr)
                 for attr in saved}
    try:
        for attr, value in reference.items():
            setattr(mod, attr, value)
        yield mod
    finally:
        for attr, value in saved.items():
            setattr(mod, attr, value)


@contextmanager
def spy(fn: Callable, name: str):
    """Within the block, record the calls that fn's module makes to its global `name` (an earlier exercise's
    function, bound by isolated): yields a list of their arguments by parameter name, empty if none were made."""
    mod = inspect.getmodule(inspect.unwrap(fn))
    original = getattr(mod, name, None)
    calls: list[dict] = []
    if not callable(original):
        yield calls
        return

    @functools.wraps(original)
    def recorded(*args, **kwargs):
        try:
            bound = inspect.signature(original).bind(*args, **kwargs)
            bound.apply_defaults()
            calls.append(dict(bound.arguments))
        except TypeError:
            pass  # the call itself raises the learner's TypeError
        return original(*args, **kwargs)

    setattr(mod, name, recorded)
    try:
        yield calls
    finally:
        setattr(mod, name, original)


class Graded:
    """A module as the tests see it: calling a function that is not started raises NotStarted at once; a function
    that ran past the time limit once (timed_out, shared by the run's tests) fails at once after that; a numpy
    array returned for a tensor is named. In a worker, each call notes which function runs, so that a crash or a
    time-out inside a C call names it."""

    def __init__(self, mod: ModuleType, timed_out: dict | None = None, test: str = ""):
        self._mod, self._timed_out, self._test = mod, {} if timed_out is None else timed_out, test

    def __repr__(self) -> str:
        return f"<{self._mod.__name__}>"

    def __getattr__(self, name: str):
        from . import sandbox
        from .calls import NotStarted, TimeLimitExceeded, not_started_message, numpy_problem, timed_out_message

        value = getattr(self._mod, name)
        if not callable(value):
            return value
        key = (self._mod.__name__, name)

        @functools.wraps(value)
        def guarded(*args, **kwargs):
            if key in self._timed_out:
                raise TimeLimitExceeded(self._timed_out[key])
            sandbox.running(function=key)
            try:
                result = value(*args, **kwargs)
            except NotImplementedError as e:
                raise NotStarted(not_started_message(value, e)) from None
            except TimeLimitExceeded:
                self._timed_out[key] = timed_out_message(name, self._test)
                raise
            numpy_problem(name, result)
            return result

        return guarded
