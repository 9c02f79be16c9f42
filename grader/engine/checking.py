"""One golden call checked: run the code under test on the golden inputs, compare with the golden outputs, and name
the known mistake whose outputs it matches."""

from collections.abc import Callable

from .. import specs
from ..i18n import say
from .calls import Call, Golden, Ref, differences, run
from .compare import GradeFailure


def run_call(target: Callable, call: Call, kwargs: dict, label: str) -> dict:
    """target's outputs on one golden call's resolved inputs, through the driver the call names, if any."""
    return run(target, call, kwargs, specs.driver(call.driver) if call.driver else None, label)


def recognised(got: dict, golden: Golden) -> list[str]:
    """Ids of known mistakes whose outputs got matches."""
    return [mid for mid, outs in golden.mistakes.items() if not differences(got, outs, golden.call.tolerance)]


def check(target: Callable, golden: Golden, model) -> None:
    """Run target on the golden inputs; raise one GradeFailure that says how the result differs, naming a known
    mistake (its id in GradeFailure.mistake) when the result is what that mistake gives."""
    call = golden.call
    label = f"{call.function} ({model.name}, {call.case})"
    kwargs = {k: model.resolve(v) if isinstance(v, Ref) else v for k, v in call.kwargs.items()}
    try:
        got = run_call(target, call, kwargs, label)
    except GradeFailure as e:
        if e.inputs_changed:
            model.forget()  # the shared weights may be damaged: reload them for the next test
        raise
    reports = differences(got, golden.expected, call.tolerance)
    if not reports:
        return
    known = recognised(got, golden)
    hint = "".join("\n=> " + say("checking.known_mistake") + specs.mistake(m).message() for m in known)
    raise GradeFailure("\n".join([say("checking.does_not_match", label=label), *reports]) + hint,
                       mistake=known[0] if known else None)
