"""Compare a result with its golden and say what a learner needs: shape, dtype, errors, where, a few values."""

from dataclasses import dataclass

import torch

from ..i18n import say


class GradeFailure(AssertionError):
    """A graded test failed for a reason the message states completely; the plugin shows only the message. mistake is
    the id of the named mistake the result was recognised as; inputs_changed says the code changed its inputs."""

    def __init__(self, message: str, mistake: str | None = None, inputs_changed: bool = False):
        super().__init__(message)
        self.mistake, self.inputs_changed = mistake, inputs_changed


@dataclass(frozen=True)
class Tolerance:
    name: str  # its reason is the catalogue's message tolerance.<name>
    atol: float  # in units of the expected tensor's root mean square
    rtol: float  # relative to each expected value

    def reason(self, lang: str | None = None) -> str:
        return say(f"tolerance.{self.name.replace(' ', '_')}", lang=lang)

    def bound(self, expected: torch.Tensor) -> torch.Tensor:
        """Allowed absolute error per element; 0 where expected is inf or NaN (those must match exactly)."""
        finite = torch.isfinite(expected)
        magnitude = expected.abs().float().where(finite, 0.0)
        scale = magnitude.pow(2).sum().div(finite.sum().clamp_min(1)).sqrt()
        return (self.atol * scale + self.rtol * magnitude).where(finite, 0.0)


EXACT = Tolerance("exact", 0.0, 0.0)
# Every tolerance in the kit, by name; each golden call names the one that fits how its output was computed. Each
# reason (grader/messages) says the most of it that the correct variants (tests/plants) use, tiny / trained model.
TOLERANCES = {t.name: t for t in (
    Tolerance("float32", 1e-5, 1e-5),
    Tolerance("float32 layers", 1e-4, 1e-4),
    Tolerance("float32 angles", 2e-3, 0.0),
    Tolerance("bf16", 2**-7, 2**-6),
    Tolerance("bf16 layer", 2**-5, 2**-5),
    Tolerance("bf16 rotation", 2**-5, 2**-5),
    Tolerance("bf16 attention", 2**-3, 2**-3),
    Tolerance("bf16 int8", 2**-3, 2**-3),
)}


def tolerance(expected: torch.Tensor, name: str) -> Tolerance:
    """The named tolerance for a floating-point output; exact for anything else."""
    if not (expected.is_floating_point() or expected.is_complex()):
        return EXACT
    return TOLERANCES[name]


def _shape(t: torch.Tensor) -> str:
    return f"[{', '.join(map(str, t.shape))}]"


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _index(flat_index: int, shape: torch.Size) -> str:
    idx = []
    for size in reversed(shape):
        idx.append(flat_index % size)
        flat_index //= size
    return "[" + ", ".join(map(str, reversed(idx))) + "]"


def _value(x: torch.Tensor) -> str:
    return f"{complex(x):.5g}" if x.is_complex() else f"{float(x):.5g}"


def finite_problem(name: str, got: torch.Tensor) -> str | None:
    """Name NaN or inf in a result, or None."""
    if not (got.is_floating_point() or got.is_complex()):
        return None
    bad = ~torch.isfinite(got)
    if not bad.any():
        return None
    first = int(bad.reshape(-1).nonzero()[0])
    kind = "NaN" if torch.isnan(got.reshape(-1)[first]) else "inf"
    return say("compare.not_finite", name=name, kind=kind, n=int(bad.sum()), total=got.numel(),
               first=_index(first, got.shape))


def minus_inf_stand_in(name: str, got: torch.Tensor, expected: torch.Tensor) -> str | None:
    """Name a large finite negative number (Hugging Face's torch.finfo(dtype).min) where -inf is expected, or None."""
    if not got.is_floating_point():
        return None
    stand_in = (expected == float("-inf")) & torch.isfinite(got) & (got.float() < -1e30)
    if not stand_in.any():
        return None
    first = int(stand_in.reshape(-1).nonzero()[0])
    value = got.reshape(-1)[first]
    what = next((f"torch.finfo({d}).min" for d in (torch.float32, torch.float64, torch.bfloat16, torch.float16)
                 if float(value) == torch.finfo(d).min), _value(value))
    n = int(stand_in.sum())
    return say("compare.minus_inf_stand_in", name=name, what=what, n=n, total=got.numel(),
               first=_index(first, got.shape))


def mismatch(name: str, got, expected: torch.Tensor, tol: Tolerance) -> str | None:
    """None if got matches expected within tol, else a report of how it differs."""
    if not isinstance(got, torch.Tensor):
        return say("compare.not_a_tensor", name=name, shape=_shape(expected), dtype=_dtype(expected),
                   kind=type(got).__name__)
    if got.shape != expected.shape:
        return say("compare.shape", name=name, got=_shape(got), expected=_shape(expected))
    if got.dtype != expected.dtype:
        return say("compare.dtype", name=name, got=_dtype(got), expected=_dtype(expected), shape=_shape(got))
    problem = finite_problem(name, got)
    if problem and torch.isfinite(expected).all():
        return problem
    stand_in = minus_inf_stand_in(name, got, expected)
    if stand_in:
        return stand_in
    if tol is EXACT or not (expected.is_floating_point() or expected.is_complex()):
        if torch.equal(got, expected):
            return None
        wrong = (got != expected).reshape(-1)
        first = int(wrong.nonzero()[0])
        side = ", ".join(say("compare.exact_pair", index=_index(i, got.shape), got=_value(got.reshape(-1)[i]),
                             expected=_value(expected.reshape(-1)[i])) for i in wrong.nonzero()[:4, 0].tolist())
        return say("compare.not_exact", name=name, n=int(wrong.sum()), total=got.numel(),
                   first=_index(first, got.shape), side=side)
    same = (got == expected) | (torch.isnan(got) & torch.isnan(expected))  # also equal infs, whose difference is NaN
    err = (got - expected).abs().float().masked_fill(same, 0).nan_to_num(float("inf"), float("inf"))
    bound = tol.bound(expected)
    outside = (err > bound).reshape(-1)
    if not outside.any():
        return None
    flat_err = err.reshape(-1)
    worst = int(flat_err.argmax())
    rel = flat_err / expected.abs().float().reshape(-1).clamp_min(1e-30)
    worst_rel = int(rel.argmax())
    shown = outside.nonzero()[:4, 0].tolist()
    flat_got, flat_expected = got.reshape(-1), expected.reshape(-1)
    side = "\n".join(f"    {_index(i, got.shape):>14}  {_value(flat_got[i]):>12}  {_value(flat_expected[i]):>12}"
                     for i in shown)
    return say("compare.outside", name=name, n=int(outside.sum()), total=got.numel(), shape=_shape(got),
               dtype=_dtype(got), max_abs=f"{float(flat_err[worst]):.4g}", at_abs=_index(worst, got.shape),
               max_rel=f"{float(rel[worst_rel]):.4g}", at_rel=_index(worst_rel, got.shape), atol=f"{tol.atol:g}",
               rtol=f"{tol.rtol:g}", reason=tol.reason(), side=side)


def matches(got, expected: torch.Tensor, tol: Tolerance) -> bool:
    return isinstance(got, torch.Tensor) and mismatch("", got, expected, tol) is None


SHOWN = 4  # keys or values of each kind that a diff of two dicts shows
WINDOW = 8  # list entries a diff shows around the first difference


def _short(value, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _kind(value) -> str:
    """What a value is, as a message says it: 'an int', 'a 0-d tensor', 'a numpy.int64', 'None'."""
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        return "a 0-d tensor" if value.dim() == 0 else f"a tensor {_shape(value)}"
    cls = type(value)
    return _a(cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}")


def _same_type(got, expected) -> bool:
    """got has the type expected promises: bool is not an int, an int is not a float, a tuple is not a list."""
    if expected is None:
        return got is None
    if isinstance(expected, bool):
        return isinstance(got, bool)
    if isinstance(expected, int):
        return isinstance(got, int) and not isinstance(got, bool)
    for cls in (float, str, list, tuple, dict):
        if isinstance(expected, cls):
            return isinstance(got, cls)
    return True


def type_problem(name: str, got, expected) -> str | None:
    """The first place where got is not of the type of expected (a value from JSON: None, bool, int, float, str,
    list, tuple, dict, nested), as a report; None if the types agree everywhere."""
    if not _same_type(got, expected):
        fix = say("compare.convert_it") if isinstance(got, torch.Tensor) and got.dim() == 0 else ""
        shown = say("compare.shown", value=_short(got, 60)) if got is not None else ""
        return say("compare.type", name=name, expected=_kind(expected), got=_kind(got), shown=shown, fix=fix)
    if isinstance(expected, (list, tuple)):
        return next((p for i, (g, e) in enumerate(zip(got, expected)) if (p := type_problem(f"{name}[{i}]", g, e))),
                    None)
    if isinstance(expected, dict):
        keys_are_str = all(isinstance(k, str) for k in expected)
        wrong_key = next((k for k in got if not isinstance(k, str)), None) if keys_are_str else None
        if wrong_key is not None:
            return say("compare.keys_not_str", name=name, kind=_kind(wrong_key), key=_short(wrong_key, 60))
        return next((p for k, e in expected.items() if k in got and (p := type_problem(f"{name}[{k!r}]", got[k], e))),
                    None)
    return None


def _dict_diff(name: str, got: dict, expected: dict) -> str:
    """Missing, extra and differing keys, a few of each."""
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    differ = [k for k in expected if k in got and got[k] != expected[k]]

    def few(keys, show) -> str:
        more = say("compare.more", n=len(keys) - SHOWN) if len(keys) > SHOWN else ""
        return ", ".join(map(show, keys[:SHOWN])) + more

    lines = [say("compare.dicts", name=name, missing=len(missing), extra=len(extra), differ=len(differ),
                 expected=len(expected))]
    if missing:
        lines.append(say("compare.missing_keys") + few(missing, repr))
    if extra:
        lines.append(say("compare.extra_keys") + few(extra, lambda k: f"{k!r}: {_short(got[k], 40)}"))
    if differ:
        lines.append(say("compare.differing_keys") + few(differ, lambda k: say(
            "compare.differing_key", key=repr(k), got=_short(got[k], 40), expected=_short(expected[k], 40))))
    return "\n".join(lines)


def _sequence_diff(name: str, got, expected) -> str:
    """Where two lists (or strings) first differ, with a window of each, labelled with the window's start."""
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    if len(got) == len(expected) and isinstance(got, list) and isinstance(got[first], (list, dict)):
        return value_mismatch(f"{name}[{first}]", got[first], expected[first])
    start = max(0, first - 3)
    window = f"[{start}:{min(start + WINDOW, max(len(got), len(expected)))}]"
    what = say("compare.strings") if isinstance(expected, str) else say("compare.lists")
    differ = sum(a != b for a, b in zip(got, expected)) + abs(len(got) - len(expected))
    return say("compare.sequences", name=name, what=what, first=first, got_length=len(got),
               expected_length=len(expected), differ=differ, longest=max(len(got), len(expected)), window=window,
               got=_short(got[start:start + WINDOW]), expected=_short(expected[start:start + WINDOW]))


def value_mismatch(name: str, got, expected) -> str | None:
    """For results that are not tensors (ids, strings, numbers, dicts): the type the contract promises, then exact
    equality; a report of the difference, or None."""
    wrong_type = type_problem(name, got, expected)
    if wrong_type:
        return wrong_type
    if got == expected:
        return None
    if isinstance(expected, dict):
        return _dict_diff(name, got, expected)
    if isinstance(expected, (list, tuple)) or (isinstance(expected, str) and len(expected) > 40):
        return _sequence_diff(name, got, expected)
    return say("compare.value", name=name, got=_short(got), expected=_short(expected))


def near_ties(top2: torch.Tensor, rms: torch.Tensor, tol: Tolerance) -> torch.Tensor:
    """Per generation step, whether the reference's top-1 and top-2 logits are so close that logits within tol
    of them could swap the two: then a correct program may choose either token."""
    # top2 [steps, 2] (top-1, top-2 logits), rms [steps] (root mean square of each step's logits)
    slack = 2 * tol.atol * rms + tol.rtol * top2.abs().sum(-1)  # [steps]: both logits may move by their bound
    return (top2[:, 0] - top2[:, 1]) <= slack  # [steps] bool


def generation_mismatch(name: str, got: dict, expected: dict, tol: Tolerance) -> list[str]:
    """Generated tokens compared tie-aware: equal up to the first step where the reference's own top-1/top-2
    margin is within the tolerance (past it a correct program may take the other token and go its own way), and
    the logits of those steps within tol. One report per thing that differs."""
    tokens, want = got["tokens"], expected["tokens"]
    ties = near_ties(expected["top2"], expected["rms"], tol)
    sure = int(ties.nonzero()[0]) if ties.any() else len(want)  # steps before the first near tie
    n = min(sure, len(tokens))
    report = mismatch(f"{name}: logits of steps 0..{n - 1}", got["logits_head"][:n], expected["logits_head"][:n],
                      tol) if n else None
    if report:
        return [report]
    for i in range(sure):
        if i >= len(tokens):
            return [say("compare.stopped_early", name=name, n=len(tokens), expected=want[:sure])]
        if tokens[i] != want[i]:
            top1, top2 = (float(v) for v in expected["top2"][i])
            return [say("compare.other_token", name=name, step=i, got=tokens[i], expected=want[i],
                        margin=f"{top1 - top2:.4g}", got_tokens=tokens[i:i + 8], expected_tokens=want[i:i + 8])]
    if sure == len(want) and len(tokens) != len(want):
        return [say("compare.too_many_tokens", name=name, n=len(tokens), expected=len(want),
                    then=tokens[len(want):len(want) + 8])]
    return []
