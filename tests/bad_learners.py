"""Learners who return their input unchanged, zeros, or random values of the right shape: every graded test
must fail them. spoil(globals(), kind) replaces each function and class a module defines."""

import dataclasses
import random as _random
from collections.abc import Iterator

import torch


def _shape_like(value, kind: str):
    """A value of the same structure as value: all zeros, or random."""
    if isinstance(value, torch.Tensor):
        if kind == "zeros":
            return torch.zeros_like(value)
        if value.is_floating_point() or value.is_complex():
            return torch.randn_like(value)
        return torch.randint_like(value, 0, 1000)
    if value is None:
        return None
    if isinstance(value, bool):
        return (not value) if kind == "random" else None
    if isinstance(value, (int, float)):
        return type(value)(0 if kind == "zeros" else _random.randint(1, 10**6))
    if isinstance(value, str):
        return "" if kind == "zeros" else "".join(_random.choice("abcxyz ") for _ in range(len(value) + 1))
    if isinstance(value, (list, tuple)):
        return type(value)(_shape_like(v, kind) for v in value)
    if isinstance(value, dict):
        return {k: _shape_like(v, kind) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: _shape_like(getattr(value, f.name), kind)
                                             for f in dataclasses.fields(value)})
    return None  # e.g. a tokenizer object


def _first_input(args, kwargs):
    values = [*args, *kwargs.values()]
    return next((v for v in values if isinstance(v, torch.Tensor)), values[0] if values else None)


def _spoil_function(fn, kind: str):
    def bad(*args, **kwargs):
        if kind == "identity":
            return _first_input(args, kwargs)
        result = fn(*args, **kwargs)
        if isinstance(result, Iterator):
            result = list(result)
        return _shape_like(result, kind)

    bad.__name__ = bad.__qualname__ = fn.__name__
    return bad


def spoil(namespace: dict, kind: str) -> None:
    module = namespace["__name__"]
    for name, value in list(namespace.items()):
        if getattr(value, "__module__", None) != module or name.startswith("_") or name == "ModelArgs":
            continue
        if isinstance(value, type):
            for attr in ("update", "__call__", "ask"):
                if attr in vars(value):
                    setattr(value, attr, _spoil_function(vars(value)[attr], kind))
        elif callable(value):
            namespace[name] = _spoil_function(value, kind)
