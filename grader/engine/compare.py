"""Compare a result with its golden and say what a learner needs: shape, dtype, errors, where, a few values."""

from dataclasses import dataclass

import torch

from ..i18n import pick


class GradeFailure(AssertionError):
    """A graded test failed for a reason the message states completely; the plugin shows only the message."""


@dataclass(frozen=True)
class Tolerance:
    atol: float  # in units of the expected tensor's root mean square
    rtol: float  # relative to each expected value
    reason: str

    def bound(self, expected: torch.Tensor) -> torch.Tensor:
        """Allowed absolute error per element; 0 where expected is inf or NaN (those must match exactly)."""
        finite = torch.isfinite(expected)
        magnitude = expected.abs().float().where(finite, 0.0)
        scale = magnitude.pow(2).sum().div(finite.sum().clamp_min(1)).sqrt()
        return (self.atol * scale + self.rtol * magnitude).where(finite, 0.0)


EXACT = Tolerance(0.0, 0.0, "integers, booleans and masks are exact")
# Every tolerance in the kit, by name; each golden call names the one that fits how its output was computed.
TOLERANCES = {  # in each reason: the most of it the correct variants (tests/plants/*/variants/) use, tiny / trained
    "float32": Tolerance(1e-5, 1e-5, "float32, a few operations: only the order of summation differs "
                                     "(variants use 0.09 / 0.22 of it)"),
    "float32 layers": Tolerance(1e-4, 1e-4, "float32 through attention and whole layers: summation order accumulates "
                                            "(variants use 0.06 / 0.05)"),
    "float32 angles": Tolerance(2e-3, 0.0, "RoPE's angle t*f in float32 is off by about t*f*2^-23, and cos and sin by as "
                                           "much: 1e-3 at position 8192 (variants use 0.002 / 0.03, over 669 positions)"),
    "bf16": Tolerance(2**-7, 2**-6, "bf16 keeps 8 significant bits: allow about two roundings apart (variants use 0.38 / 0.47)"),
    "bf16 layer": Tolerance(2**-5, 2**-5, "bf16 through a feed-forward sublayer: roundings accumulate (variants use 0.46 "
                                          "on the tiny models; a trained one, where they took 0.76, is graded in float32)"),
    "bf16 rotation": Tolerance(2**-5, 2**-5, "RoPE rounded to bf16 as transformers does it: the error follows each pair's "
                                             "size (variants use 0.21 on the tiny models; a trained one, where 'bf16' "
                                             "was exceeded 1.9 times, is graded in float32)"),
    "bf16 attention": Tolerance(2**-3, 2**-3, "bf16 attention: one rounding of a score near 10 moves its softmax weight "
                                              "by about 6%, and every layer adds to it (variants use 0.23 on the tiny "
                                              "models; trained ones, where whole forwards exceeded it 3.5 times, are "
                                              "graded in float32)"),
}


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
    return pick(
        f"{name} contains {kind} ({int(bad.sum())} of {got.numel()} values, first at {_index(first, got.shape)}): "
        "look for a division by zero, a log or sqrt of a negative number, or a softmax row that is all -inf",
        f"{name} 含有 {kind}（{got.numel()} 个值中有 {int(bad.sum())} 个，第一个在 {_index(first, got.shape)}）："
        "检查是否除以零、对负数取 log 或 sqrt，或 softmax 的某一行全是 -inf",
    )


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
    return pick(
        f"{name}: {what} where -inf is expected ({n} of {got.numel()} values, first at {_index(first, got.shape)}). The contract "
        "is -inf: exp(-inf) is exactly 0, so a masked key gets exactly zero weight, whereas a finite minimum added to a "
        "finite score can overflow to -inf anyway, or, in bf16 or fp16, leave a masked key a small weight. Use float('-inf')",
        f"{name}：应为 -inf 的位置是 {what}（{got.numel()} 个值中有 {n} 个，第一个在 {_index(first, got.shape)}）。约定是 -inf："
        "exp(-inf) 恰好为 0，被遮住的 key 权重恰好为零；而有限的最小值加上有限的分数可能仍溢出成 -inf，"
        "在 bf16 或 fp16 中还可能给被遮住的 key 留下一点权重。请用 float('-inf')")


def mismatch(name: str, got, expected: torch.Tensor, tol: Tolerance) -> str | None:
    """None if got matches expected within tol, else a report of how it differs."""
    if not isinstance(got, torch.Tensor):
        return pick(f"{name}: expected a tensor {_shape(expected)} {_dtype(expected)}, got {type(got).__name__}",
                    f"{name}：应返回张量 {_shape(expected)} {_dtype(expected)}，实际返回 {type(got).__name__}")
    if got.shape != expected.shape:
        return pick(f"{name}: shape {_shape(got)}, expected {_shape(expected)}",
                    f"{name}：形状为 {_shape(got)}，应为 {_shape(expected)}")
    if got.dtype != expected.dtype:
        return pick(f"{name}: dtype {_dtype(got)}, expected {_dtype(expected)} (shape {_shape(got)} is right)",
                    f"{name}：dtype 为 {_dtype(got)}，应为 {_dtype(expected)}（形状 {_shape(got)} 正确）")
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
        side = ", ".join(f"{_index(i, got.shape)} got {_value(got.reshape(-1)[i])} expected {_value(expected.reshape(-1)[i])}"
                         for i in wrong.nonzero()[:4, 0].tolist())
        return pick(f"{name}: {int(wrong.sum())} of {got.numel()} values differ (must be exact), first at {_index(first, got.shape)}: {side}",
                    f"{name}：{got.numel()} 个值中有 {int(wrong.sum())} 个不同（必须完全一致），第一个在 {_index(first, got.shape)}：{side}")
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
    side = "\n".join(f"    {_index(i, got.shape):>14}  {_value(got.reshape(-1)[i]):>12}  {_value(expected.reshape(-1)[i]):>12}" for i in shown)
    return pick(
        f"{name}: {int(outside.sum())} of {got.numel()} values outside the tolerance (shape {_shape(got)} and dtype {_dtype(got)} are right)\n"
        f"  max abs error {float(flat_err[worst]):.4g} at {_index(worst, got.shape)}; max rel error {float(rel[worst_rel]):.4g} at {_index(worst_rel, got.shape)}\n"
        f"  tolerance: {tol.atol:g} x rms(expected) + {tol.rtol:g} x |expected| ({tol.reason})\n"
        f"           index           got      expected\n{side}",
        f"{name}：{got.numel()} 个值中有 {int(outside.sum())} 个超出容差（形状 {_shape(got)} 与 dtype {_dtype(got)} 正确）\n"
        f"  最大绝对误差 {float(flat_err[worst]):.4g} 在 {_index(worst, got.shape)}；最大相对误差 {float(rel[worst_rel]):.4g} 在 {_index(worst_rel, got.shape)}\n"
        f"  容差：{tol.atol:g} x rms(期望值) + {tol.rtol:g} x |期望值|（{tol.reason}）\n"
        f"           索引            实际          期望\n{side}",
    )


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
        fix = pick(": convert it with int(...), float(...) or .item()", "：用 int(...)、float(...) 或 .item() 转换") \
            if isinstance(got, torch.Tensor) and got.dim() == 0 else ""
        shown = pick(f" ({_short(got, 60)})", f"（{_short(got, 60)}）") if got is not None else ""
        return pick(f"{name}: expected {_kind(expected)}, got {_kind(got)}{shown}{fix}",
                    f"{name}：应为 {_kind(expected)}，实际为 {_kind(got)}{shown}{fix}")
    if isinstance(expected, (list, tuple)):
        return next((p for i, (g, e) in enumerate(zip(got, expected)) if (p := type_problem(f"{name}[{i}]", g, e))), None)
    if isinstance(expected, dict):
        wrong_key = next((k for k in got if not isinstance(k, str)), None) if all(isinstance(k, str) for k in expected) else None
        if wrong_key is not None:
            return pick(f"{name}: keys should be str, got {_kind(wrong_key)} ({_short(wrong_key, 60)})",
                        f"{name}：键应为 str，实际为 {_kind(wrong_key)}（{_short(wrong_key, 60)}）")
        return next((p for k, e in expected.items() if k in got and (p := type_problem(f"{name}[{k!r}]", got[k], e))), None)
    return None


def _dict_diff(name: str, got: dict, expected: dict) -> str:
    """Missing, extra and differing keys, a few of each."""
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    differ = [k for k in expected if k in got and got[k] != expected[k]]

    def few(keys, show) -> str:
        return ", ".join(map(show, keys[:SHOWN])) + (pick(f", ... ({len(keys) - SHOWN} more)", f"，……（另有 {len(keys) - SHOWN} 个）")
                                                      if len(keys) > SHOWN else "")

    lines = [pick(f"{name}: dicts differ: {len(missing)} keys missing, {len(extra)} extra, {len(differ)} with another value "
                  f"({len(expected)} keys expected)",
                  f"{name}：两个字典不同：缺少 {len(missing)} 个键，多出 {len(extra)} 个，{len(differ)} 个值不同（应有 {len(expected)} 个键）")]
    if missing:
        lines.append(pick("  missing  ", "  缺少  ") + few(missing, repr))
    if extra:
        lines.append(pick("  extra    ", "  多出  ") + few(extra, lambda k: f"{k!r}: {_short(got[k], 40)}"))
    if differ:
        lines.append(pick("  differ   ", "  不同  ") + few(differ, lambda k: pick(f"{k!r}: got {_short(got[k], 40)}, expected {_short(expected[k], 40)}",
                                                                              f"{k!r}：实际 {_short(got[k], 40)}，应为 {_short(expected[k], 40)}")))
    return "\n".join(lines)


def _sequence_diff(name: str, got, expected) -> str:
    """Where two lists (or strings) first differ, with a window of each, labelled with the window's start."""
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    if len(got) == len(expected) and isinstance(got, list) and isinstance(got[first], (list, dict)):
        return value_mismatch(f"{name}[{first}]", got[first], expected[first])
    start = max(0, first - 3)
    window = f"[{start}:{min(start + WINDOW, max(len(got), len(expected)))}]"
    what = pick("strings", "字符串") if isinstance(expected, str) else pick("lists", "列表")
    differ = sum(a != b for a, b in zip(got, expected)) + abs(len(got) - len(expected))
    return pick(
        f"{name}: {what} differ first at index {first} (lengths {len(got)} and {len(expected)}; {differ} of "
        f"{max(len(got), len(expected))} positions differ)\n"
        f"  got{window}      {_short(got[start:start + WINDOW])}\n  expected{window} {_short(expected[start:start + WINDOW])}",
        f"{name}：两个{what}在下标 {first} 处首次不同（长度 {len(got)} 与 {len(expected)}；{max(len(got), len(expected))} 个位置中 "
        f"{differ} 个不同）\n  实际{window} {_short(got[start:start + WINDOW])}\n  期望{window} {_short(expected[start:start + WINDOW])}",
    )


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
    return pick(f"{name}: got {_short(got)}, expected {_short(expected)}", f"{name}：实际为 {_short(got)}，应为 {_short(expected)}")


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
    report = mismatch(f"{name}: logits of steps 0..{n - 1}", got["logits_head"][:n], expected["logits_head"][:n], tol) if n else None
    if report:
        return [report]
    for i in range(sure):
        if i >= len(tokens):
            return [pick(f"{name}: generation stopped after {len(tokens)} tokens; the reference went on to {want[:sure]}",
                         f"{name}：生成在 {len(tokens)} 个 token 后就停止了；参考实现继续生成了 {want[:sure]}")]
        if tokens[i] != want[i]:
            top1, top2 = (float(v) for v in expected["top2"][i])
            return [pick(f"{name}: step {i} chose token {tokens[i]}, the reference {want[i]}; its top-1/top-2 margin there, "
                         f"{top1 - top2:.4g}, is wider than rounding can swap\n"
                         f"  got      [{i}:] {tokens[i:i + 8]}\n  expected [{i}:] {want[i:i + 8]}",
                         f"{name}：第 {i} 步选了 token {tokens[i]}，参考实现选的是 {want[i]}；参考实现在这一步的 top-1/top-2 "
                         f"差距为 {top1 - top2:.4g}，远大于舍入误差能造成的交换\n"
                         f"  实际 [{i}:] {tokens[i:i + 8]}\n  期望 [{i}:] {want[i:i + 8]}")]
    if sure == len(want) and len(tokens) != len(want):
        return [pick(f"{name}: {len(tokens)} tokens, the reference {len(want)}; the first {len(want)} agree, then got {tokens[len(want):len(want) + 8]}",
                     f"{name}：生成了 {len(tokens)} 个 token，参考实现 {len(want)} 个；前 {len(want)} 个一致，之后是 {tokens[len(want):len(want) + 8]}")]
    return []
