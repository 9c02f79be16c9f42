"""One golden call checked: run the code under test on the golden inputs, compare with the golden outputs, and name
the known mistake whose outputs it matches."""

from collections.abc import Callable

from .. import devices, specs
from ..i18n import say
from .calls import Call, Golden, Ref, differences, run
from .compare import GradeFailure


def run_call(target: Callable, call: Call, kwargs: dict, label: str) -> dict:
    """target's outputs on one golden call's resolved inputs, through the driver the call names, if any."""
    return run(target, call, kwargs, specs.driver(call.driver) if call.driver else None, label)


def recognised(got: dict, golden: Golden) -> list[str]:
    """Ids of known mistakes whose outputs got matches."""
    return [mid for mid, outs in golden.mistakes.items() if not differences(got, outs, golden.call.tolerance)]


CPU_ONLY = ("drive_ranks",)  # exercise 17's ranks talk over gloo, which is the CPU's


def check(target: Callable, golden: Golden, model, device: str = "cpu") -> None:
    """Run target on the golden inputs, on device; raise one GradeFailure that says how the result differs, naming a
    known mistake (its id in GradeFailure.mistake) when the result is what that mistake gives. The inputs are moved
    to device and the outputs back to the CPU, where the goldens were computed."""
    call = golden.call
    label = f"{call.function} ({model.name}, {call.case})"
    device = "cpu" if call.driver in CPU_ONLY else device
    kwargs = {k: model.resolve(v, device) if isinstance(v, Ref) else devices.to_device(v, device)
              for k, v in call.kwargs.items()}
    try:
        with devices.on(device):
            got = run_call(target, call, kwargs, label)
    except GradeFailure as e:
        if e.inputs_changed:
            model.forget()  # the shared weights may be damaged: reload them for the next test
        raise
    if device != "cpu" and next(devices.tensors(kwargs), None) is not None:  # a loader may return what it read
        stray = devices.pinned_device_problem(got, device)
        if stray:
            raise GradeFailure(f"{label}: {stray}")
    got = devices.to_device(got, "cpu")
    reports = differences(got, golden.expected, call.tolerance)
    if not reports:
        return
    known = recognised(got, golden)
    hint = "".join("\n=> " + say("checking.known_mistake") + specs.mistake(m).message() for m in known)
    raise GradeFailure("\n".join([say("checking.does_not_match", label=label), *reports]) + hint,
                       mistake=known[0] if known else None)
