"""torch.compile as the graded tests run it: dynamo alone (no code generation, so a compile takes a second on the tiny
models), every shape static, graph breaks allowed and counted; and what the compiled code did, said in terms that do
not depend on how it is written: its graph breaks, whether it compiled again after its first call, and what kind of
value changed when it did."""

import functools
import logging
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field


RECOMPILE_LIMIT = 64  # more than the steps a graded decode runs: a recompile per token shows at every token


@dataclass
class Compiled:
    """What the functions compiled within counting_compile() did."""

    asked: list[dict] = field(default_factory=list)  # the options of each torch.compile call, as the code passed them
    made: list = field(default_factory=list)  # what each torch.compile call returned
    calls: int = 0  # calls of compiled functions begun
    recompiles: int = 0  # graphs compiled during a compiled function's calls after its first
    graphs: int = 0  # graphs compiled in all
    operations: int = 0  # operations in them
    at_first_call: Callable[[], None] | None = None  # run as the first call of any compiled function begins

    def report(self) -> dict:
        """Its graph breaks (the first line of each reason), whether each function compiled only on its first call,
        and the kinds of value whose change made it compile again: the same for every correct program."""
        from torch._dynamo.utils import counters

        return {"graph_breaks": sorted({reason.strip().splitlines()[0] for reason in counters["graph_break"]}),
                "compiled_once": self.recompiles == 0,
                "recompiled_because": sorted({guard_kind(r) for r in _guard_failures()})}


def _guard_failures() -> list[str]:
    from torch._dynamo import utils

    return [reason for reasons in getattr(utils, "guard_failures", {}).values() for reason in reasons]


def guard_kind(reason: str) -> str:
    """What kind of value a failed guard was about: 'a Python number' for '0/1: pos == 18  # ...' (or "L['pos'] ==
    18"), "a tensor's shape" for "tensor 'x' size mismatch ...", and so on; names are left out, as every program
    chooses its own."""
    expr = re.sub(r"^\s*\d+/\d+:\s*", "", reason.splitlines()[0].split("#")[0]).strip()
    carried = re.match(r"(L\[')?___stack", expr) is not None  # what dynamo carries over a graph break
    if re.match(r"tensor '", expr):
        kind = "a tensor's shape" if re.search(r"size|stride", expr) else "a tensor's dtype or device"
    elif re.search(r"==\s*-?[\d.]+\s*$", expr):
        kind = "a Python number"
    elif "___check_obj_id" in expr or "___check_type_id" in expr:
        kind = "an object"
    elif expr.startswith("len("):
        kind = "a list's length"
    else:
        kind = "another value"
    return kind + (" after a graph break" if carried else "")


def dynamo_failure(error: BaseException, step: int) -> str:
    """What a compile that failed at a step says: dynamo's explanation, and the lines of the code under test it
    names."""
    from ..i18n import say

    lines = [line.rstrip() for line in str(error).splitlines() if line.strip()]
    where = [line.strip() for line in lines if "exercises/" in line or "solutions/" in line]
    return say("compiled.failed", step=step, error=type(error).__name__, explanation="\n  ".join(lines[:4]),
               where="\n  ".join(where[:4]))


@contextmanager
def _plain_cpu():
    """Without the function mode of torch.device("cpu") (the grader runs code within one): on the CPU it changes
    nothing, but dynamo traces through it, and there it breaks the graph at Tensor methods written in Python
    (Tensor.unflatten, in torch 2.13) that it traces whole without it."""
    try:
        from torch.overrides import _get_current_function_mode, _pop_mode_temporarily
        from torch.utils._device import DeviceContext
    except ImportError:
        yield
        return
    mode = _get_current_function_mode()
    if isinstance(mode, DeviceContext) and mode.device.type == "cpu":
        with _pop_mode_temporarily():
            yield
    else:
        yield


def _settings() -> dict:
    """Dynamo's settings for a counted compile, under the names this torch version has."""
    from torch._dynamo import config

    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    return {limit: RECOMPILE_LIMIT, "automatic_dynamic_shapes": False}


@contextmanager
def counting_compile(count: bool = True, fullgraph: bool = False):
    """Within the block, torch.compile(fn, **options) records the options and gives fn compiled by dynamo alone and
    counted (count=True), or fn itself, run eagerly for its values (count=False). A graph break is counted, or with
    fullgraph=True an error. Yields a Compiled."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounter
    from torch._dynamo.utils import counters

    real, compiled, counter = torch.compile, Compiled(), CompileCounter()

    def watched(fn):
        run = real(fn, backend=counter, dynamic=False, fullgraph=fullgraph) if count else fn
        first = True

        @functools.wraps(fn)
        def call(*args, **kwargs):
            nonlocal first
            if compiled.calls == 0 and compiled.at_first_call is not None:
                compiled.at_first_call()
            compiled.calls += 1
            before = counter.frame_count
            try:
                with _plain_cpu():
                    return run(*args, **kwargs)
            finally:
                compiled.recompiles += 0 if first else counter.frame_count - before
                compiled.graphs, compiled.operations = counter.frame_count, counter.op_count
                first = False

        return call

    def fake(model=None, **options):
        if model is None:  # @torch.compile(...) as a decorator
            return lambda fn: fake(fn, **options)
        compiled.asked.append(options)
        compiled.made.append(watched(model))
        return compiled.made[-1]

    torch._dynamo.reset()
    counters.clear()
    dynamo_log = logging.getLogger("torch._dynamo")
    level = dynamo_log.level
    dynamo_log.setLevel(logging.ERROR)  # graph breaks are counted here, not printed
    torch.compile = fake
    try:
        with torch._dynamo.config.patch(**_settings()):
            yield compiled
    finally:
        torch.compile = real
        dynamo_log.setLevel(level)
        torch._dynamo.reset()
