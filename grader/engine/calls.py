"""Calling an implementation on golden inputs: resolve the inputs, call safely, normalise what comes back,
and check it against the golden outputs."""

import dataclasses
import importlib
import inspect
import traceback
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import devices
from .compare import GradeFailure, generation_mismatch, mismatch, tolerance, value_mismatch
from ..i18n import say
from ..paths import ROOT

LOGITS_HEAD = 1024  # vocabulary columns kept for every position (the last position is kept whole)


class NotStarted(BaseException):
    """The function still raises NotImplementedError. A BaseException, so hypothesis reports it at once
    instead of shrinking an example that every input fails alike."""


class TimeLimitExceeded(BaseException):
    """A test ran past its time limit (a BaseException, so hypothesis does not retry it)."""


def timed_out_message(function: str, test: str) -> str:
    """Why a function that already ran past the time limit is not run again."""
    return say("calls.timed_out_before", function=function, test=test)


def numpy_problem(function: str, result) -> None:
    """Raise a GradeFailure when result is (or holds) a numpy array: every array in the kit's contracts is a tensor."""
    values = result if isinstance(result, (tuple, list)) else [result]
    if any(type(v).__name__ == "ndarray" and type(v).__module__ == "numpy" for v in values):
        raise GradeFailure(say("calls.ndarray", function=function))


@dataclass(frozen=True)
class Ref:
    """An input that comes from the model rather than from the golden file."""

    kind: str  # "weight", "weights", "args", "tokenizer", "tokenizer_path", "folder", "encoding"
    name: str = ""  # the weight's name
    dtype: str = ""  # of "weight" and "weights": "" for the checkpoint's own, or e.g. "float32"


@dataclass
class Call:
    """One graded call: exercise module, function (or class), case name, inputs, names of the outputs."""

    module: str
    function: str
    case: str
    kwargs: dict[str, Any]
    outputs: tuple[str, ...] = ("out",)
    tolerance: str = "bf16"  # a name in compare.TOLERANCES
    reduce: str | None = None  # "logits": keep the last position and the first LOGITS_HEAD columns
    driver: str | Callable | None = None  # a driver (grader.specs.spec.driver) of a class or loader, kept by name

    def __post_init__(self):
        if callable(self.driver):
            self.driver = self.driver.__name__


@dataclass
class Golden:
    """A Call with the outputs the reference gave, and the outputs of known mistakes on the same inputs."""

    call: Call
    expected: dict[str, Any]
    mistakes: dict[str, dict[str, Any]] = field(default_factory=dict)


def _where(filename: str) -> str:
    path = Path(filename).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else filename


def _learner_frame(exc: BaseException) -> str:
    """The learner's line that raised, as 'file:line in fn' and its source: the deepest frame in exercises/ (in
    solutions/ only when no frame is in exercises/), naming the reference's frame below it if the error rose there."""
    if isinstance(exc, SyntaxError):
        return f"\n  at {_where(exc.filename or '')}:{exc.lineno}\n    {(exc.text or '').strip()}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve().parent.name in ("exercises", "solutions")
              and not Path(f.filename).name.startswith("test_")]
    mine = [f for f in frames if Path(f.filename).resolve().parent.name == "exercises"] or frames
    if not mine:
        return ""
    f, deepest = mine[-1], frames[-1]
    below = "" if deepest is f else "\n  " + say("calls.raised_inside_the_reference", where=_where(deepest.filename),
                                                  line=deepest.lineno, function=deepest.name)
    return f"\n  at {_where(f.filename)}:{f.lineno} in {f.name}\n    {f.line}{below}"


def _name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", getattr(fn, "__name__", repr(fn)))


def not_started_message(fn: Callable | None, error: NotImplementedError) -> str:
    """The learner's own 'not started: ...' message, or one that names the function and file."""
    if str(error).startswith("not started"):
        return str(error)
    module = inspect.getmodule(fn) if fn is not None else None
    where = Path(module.__file__).relative_to(ROOT) if module and module.__file__ else "exercises/"
    return f"not started: implement {_name(fn) if fn is not None else 'this function'} in {where}"


def import_failure_message(module: str, error: Exception) -> str:
    """'exercises/ex04_rms_norm.py cannot be imported: SyntaxError: ...' and the learner's line."""
    detail = error.msg if isinstance(error, SyntaxError) else (str(error).strip().splitlines() or [""])[0]
    extra = say("calls.only_torch_and_tiktoken") if isinstance(error, ModuleNotFoundError) else ""
    message = say("calls.cannot_import", module=module, error=type(error).__name__, detail=detail, extra=extra)
    return message + _learner_frame(error)


def in_learner_code(error: BaseException) -> bool:
    return bool(_learner_frame(error))


def invoke(fn: Callable, *args, **kwargs) -> Any:
    """Call learner code; generators are run to the end. Every failure becomes one GradeFailure."""
    try:
        result = fn(*args, **kwargs)
        if isinstance(result, Iterator):
            result = list(result)
        return result
    except NotImplementedError as e:
        raise NotStarted(not_started_message(fn, e)) from None
    except (GradeFailure, NotStarted):
        raise
    except Exception as e:
        raise GradeFailure(learner_error_message(e, fn)) from None


def learner_error_message(error: BaseException, fn: Callable | None = None) -> str:
    """'fn raised TypeError: message' and the learner's line that raised it; when tensors on two devices met while
    grading on a GPU, what the code pinned instead."""
    who = _name(fn) if fn is not None else say("calls.your_code")
    device = torch.get_default_device()
    pinned = devices.pinned_device_problem(error, device) if device.type != "cpu" else None
    if pinned:
        return f"{who}: {pinned}" + _learner_frame(error)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return say("calls.raised", who=who, error=type(error).__name__, message=first_line) + _learner_frame(error)


def tensors_in(value) -> list[torch.Tensor]:
    """The tensors an input holds (of weights cast when read, those it keeps)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        values = value.kept.values() if hasattr(value, "kept") else value.values()
        return [v for v in values if isinstance(v, torch.Tensor)]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    return []


def call_checked(fn: Callable, kwargs: dict[str, Any], label: str) -> Any:
    """invoke, and name any input tensor the call changed in place."""
    before = [(name, t, t._version) for name, v in kwargs.items() for t in tensors_in(v) if not t.is_inference()]
    result = invoke(fn, **kwargs)
    for name, t, version in before:
        if t._version != version:
            raise GradeFailure(say("calls.in_place", label=label, name=repr(name)), inputs_changed=True)
    return result


def _promised_dataclass(call: Call) -> type | None:
    """The dataclass the reference's function returns (its annotation), e.g. ModelArgs, or None. The goldens keep
    a dataclass as a dict of its fields, so the type itself is read from the reference."""
    fn = getattr(importlib.import_module(f"solutions.{call.module}"), call.function, None)
    hint = typing.get_type_hints(fn).get("return") if inspect.isfunction(fn) else None
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def logits_head(result: Any, label: str, what: str = "logits") -> dict[str, torch.Tensor]:
    """Of logits [seq, vocab_size], what is kept: the last position whole, the first LOGITS_HEAD columns of all."""
    if not isinstance(result, torch.Tensor) or result.dim() != 2:
        shape = list(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        raise GradeFailure(say("calls.not_logits", label=label, what=what, shape=shape))
    return {"last": result[-1], "head": result[:, :LOGITS_HEAD]}


def generation(steps: list, label: str, stop_tokens) -> dict[str, Any]:
    """What is compared of generated (token, logits) pairs: the tokens; the first LOGITS_HEAD logits of every
    step; and, for the tie-aware comparison, each step's top-1 and top-2 logits and the logits' root mean square."""
    for i, step in enumerate(steps):
        if not (isinstance(step, tuple) and len(step) == 2):
            raise GradeFailure(say("calls.not_pairs", label=label, step=i, kind=type(step).__name__))
        token, logits = step
        if not isinstance(token, int) or isinstance(token, bool):
            raise GradeFailure(say("calls.token_not_int", label=label, step=i, kind=type(token).__name__))
        if not isinstance(logits, torch.Tensor) or logits.dim() != 1:
            shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise GradeFailure(say("calls.step_logits", label=label, shape=shape, step=i))
        if token in stop_tokens:
            raise GradeFailure(say("calls.yielded_stop", label=label, token=token, step=i))
    if not steps:
        return {"tokens": [], "logits_head": torch.empty(0, LOGITS_HEAD), "top2": torch.empty(0, 2),
                "rms": torch.empty(0)}
    logits = [x for _, x in steps]  # each [vocab_size]
    return {
        "tokens": [t for t, _ in steps],
        "logits_head": torch.stack([x[:LOGITS_HEAD] for x in logits]),  # [steps, 1024]
        "top2": torch.stack([x.float().topk(2).values for x in logits]),  # [steps, 2]
        "rms": torch.stack([x.float().pow(2).mean().sqrt() for x in logits]),  # [steps]
    }


def normalise(result: Any, call: Call, label: str) -> dict[str, Any]:
    """Name the parts of a result; keep what is compared of large ones."""
    if call.reduce == "logits":
        return logits_head(result, label)
    promised = _promised_dataclass(call)
    if promised is not None and not (dataclasses.is_dataclass(result) and not isinstance(result, type)):
        raise GradeFailure(say("calls.not_the_dataclass", label=label, dataclass=promised.__name__, module=call.module,
                               kind=type(result).__name__))
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    if len(call.outputs) == 1:
        return {call.outputs[0]: result}
    if not isinstance(result, (tuple, list)) or len(result) != len(call.outputs):
        raise GradeFailure(say("calls.values", label=label, n=len(call.outputs), names=", ".join(call.outputs)))
    return dict(zip(call.outputs, result))


def run(target: Callable, call: Call, kwargs: dict[str, Any], driver: Callable | None, label: str) -> dict[str, Any]:
    """Outputs of target (a function, or a class/loader run by the driver call.driver names) on resolved kwargs."""
    if driver is not None:
        def driven(**kw):
            return driver(target, **kw)

        driven.__qualname__ = _name(target)  # a failure names the function under test, not the driver
        return call_checked(driven, kwargs, label)
    return normalise(call_checked(target, kwargs, label), call, label)


GENERATION = ("tokens", "logits_head", "top2", "rms")  # the outputs of generation(), compared together


def differences(got: dict[str, Any], expected: dict[str, Any], tol: str) -> list[str]:
    """One report per output that differs from its expected value."""
    reports = []
    if "top2" in expected:
        reports += generation_mismatch("tokens", got, expected, tolerance(expected["logits_head"], tol))
        expected = {k: v for k, v in expected.items() if k not in GENERATION}
    for name, exp in expected.items():
        if name not in got:
            reports.append(say("calls.missing_output", name=name))
        elif isinstance(exp, torch.Tensor):
            report = mismatch(name, got[name], exp, tolerance(exp, tol))
            if report:
                reports.append(report)
        else:
            report = value_mismatch(name, got[name], exp)
            if report:
                reports.append(report)
    return reports
