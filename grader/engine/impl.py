"""The one indirection that chooses the implementation under test: exercises/ (the learner's) or solutions/."""

import functools
import importlib
import inspect
import os
from collections.abc import Callable
from contextlib import contextmanager
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
    """A module as the tests see it: calling a function that is not started raises NotStarted at once."""

    def __init__(self, mod: ModuleType):
        self._mod = mod

    def __repr__(self) -> str:
        return f"<{self._mod.__name__}>"

    def __getattr__(self, name: str):
        from .calls import NotStarted, not_started_message

        value = getattr(self._mod, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def guarded(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            except NotImplementedError as e:
                raise NotStarted(not_started_message(value, e)) from None

        return guarded
