"""Exercise 16, int8 weights: golden calls and named mistakes."""

import torch

from solutions import ex16_int8

from ..engine.calls import Call, Ref
from ..engine.compare import GradeFailure
from ..formats.int8 import quantize_model
from ..i18n import say
from .checked_cache import drive_forward_cached
from .inputs import LAYER0, short
from .outputs import first_columns, sampled
from .spec import Spec, driver

spec = Spec("ex16_int8")
TIE_MARGIN = 1e-3  # in steps: how far from x.5 every value of a graded row lies
INT8_ROWS = 16  # rows of each matrix quantize is graded on


@spec.cases
def calls(model, acts) -> list[Call]:
    """quantize on rows of layer 0's matrices (rows away from rounding ties), dequantize and int8_linear on the
    reference's int8 weights, is_quantized on every name, the int8 forward on the tiny models: a prompt and the cached
    path in float32, and in the model's bf16 one token (see the tolerance "bf16 int8": through several tokens, bf16
    attention moves correct forms of int8_linear further from exact arithmetic than any useful bound)."""
    m = spec.module
    a0 = next(iter(acts.values()))
    w = model.weights()
    rows = {name: w[name][tie_free_rows(w[name])] for name in LAYER0}  # [<= INT8_ROWS, in] each, the checkpoint's dtype
    out = [Call(m, "quantize", short(name), {"weight": r}, outputs=("q", "scale"), tolerance="float32")
           for name, r in rows.items()]
    out += [Call(m, "quantize", "wq_float32", {"weight": rows[LAYER0[0]].float()}, outputs=("q", "scale"),
                 tolerance="float32")]
    out += [Call(m, "dequantize", short(name), dict(ex16_int8.quantize(r)._asdict()), tolerance="float32",
                 driver=drive_int8_weight) for name, r in rows.items()]
    wq, w1 = ex16_int8.quantize(w[LAYER0[0]]), ex16_int8.quantize(w[LAYER0[4]])
    out += [Call(m, "int8_linear", "prompt42_wq", {"x": a0.x_normed, **wq._asdict()}, driver=drive_int8_weight),
            Call(m, "int8_linear", "prompt42_w1_float32", {"x": a0.h_normed.float(), **w1._asdict()},
                 tolerance="float32", driver=drive_int8_weight)]
    out += [Call(m, "is_quantized", "names", {"names": list(model.checkpoint.weights)}, driver=drive_is_quantized)]
    if model.is_tiny:  # on the trained model, tests/test_trained_int8.py measures the int8 model against bf16 instead
        def fwd(dtype):
            return {"tokens": a0.tokens, "weights": Ref("weights", dtype=dtype), "args": Ref("args")}

        out += [Call(m, "forward", "prompt42", fwd("float32"), tolerance="float32 layers", driver=drive_int8_forward),
                Call(m, "forward", "first_token_bf16", {**fwd(""), "tokens": a0.tokens[:1]}, tolerance="bf16 int8",
                     driver=drive_int8_forward)]
        out += [Call(m, "forward", case, {**fwd("float32"), "chunks": chunks}, tolerance="float32 layers",
                     driver=drive_int8_forward_cached) for case, chunks in a0.cached.items()]
    return out


def tie_free_rows(weight: torch.Tensor, n: int = INT8_ROWS) -> torch.Tensor:
    """Up to n rows of weight none of whose values / step falls within TIE_MARGIN of a rounding tie (x.5): there,
    correct programs that order the arithmetic differently still round every value alike."""
    steps = weight.float() / ex16_int8.quantize(weight).scale[:, None]  # [out, in], each within [-127, 127]
    clear = ((steps - steps.floor() - 0.5).abs() > TIE_MARGIN).all(dim=1)  # [out]
    return clear.nonzero()[:n, 0]


def int8_reference(weights):
    """weights with the reference's int8 matrices: the input of the learner's int8 forward."""
    return quantize_model(weights, ex16_int8)


@driver
def drive_int8_weight(fn, q, scale, x=None):
    """dequantize(w) or int8_linear(x, w) on the reference's Int8Weight(q, scale). The inputs are copies: tensors read
    from a golden file may start off a 64-byte boundary, and torch's int8 kernel crashes the process on those."""
    w, x = ex16_int8.Int8Weight(q.clone(), scale.clone()), x if x is None else x.clone()
    return {"out": fn(w) if x is None else fn(x, w)}


@driver
def drive_is_quantized(is_quantized, names):
    """The names is_quantized says yes to."""
    said = {name: is_quantized(name) for name in names}
    for name, answer in said.items():
        if not isinstance(answer, bool):
            raise GradeFailure(say("ex16.not_a_bool", name=repr(name), kind=type(answer).__name__))
    return {"quantized": sorted(name for name, answer in said.items() if answer)}


@driver
def drive_int8_forward(forward, tokens, weights, args):
    """The int8 forward on the reference's int8 weights; some columns of every position's logits."""
    return sampled(forward(tokens, int8_reference(weights), args), f"{forward.__name__}")


@driver
def drive_int8_forward_cached(forward, tokens, weights, args, chunks):
    return first_columns(drive_forward_cached(forward, tokens, int8_reference(weights), args, chunks))


@spec.mistake("quantize", "int8_truncated",
              en="the values are truncated, not rounded: .to(torch.int8) cuts toward zero, which shrinks every weight "
                 "and doubles the worst error; torch.round first",
              zh="数值被截断而不是四舍五入：.to(torch.int8) 向零截断，会把每个权重都缩小，最大误差翻倍；先用 "
                 "torch.round")
def quantize_truncated(weight):
    w = weight.float()
    scale = w.abs().amax(dim=1).clamp_min(1e-10) / 127
    return ex16_int8.Int8Weight((w / scale[:, None]).to(torch.int8), scale)


@spec.mistake("quantize", "int8_scale_is_the_max",
              en="the scale is the row's largest magnitude, so q is only -1, 0 or 1: divide it by 127, so that the "
                 "largest value maps to 127",
              zh="scale 取了这一行的最大绝对值，于是 q 只有 -1、0、1：要再除以 127，让最大值映射到 127")
def quantize_without_127(weight):
    w = weight.float()
    scale = w.abs().amax(dim=1).clamp_min(1e-10)
    return ex16_int8.Int8Weight(torch.round(w / scale[:, None]).to(torch.int8), scale)


@spec.mistake("quantize", "int8_scale_per_input_channel",
              en="the scales are per column (amax over dim 0): per output channel means one scale per row, amax over "
                 "dim 1, so that each output of the matmul is scaled once",
              zh="scale 是按列计算的（在 dim 0 上取 amax）：按输出通道意味着每一行一个 scale，在 dim 1 上取 amax，"
                 "这样矩阵乘法的每个输出只需缩放一次")
def quantize_per_input_channel(weight):
    w = weight.float()
    scale = w.abs().amax(dim=0).clamp_min(1e-10) / 127
    return ex16_int8.Int8Weight(torch.round(w / scale[None, :]).to(torch.int8), scale)


@spec.mistake("int8_linear", "int8_linear_unscaled",
              en="the scales are missing: x @ q.T must be multiplied by each output row's scale "
                 "(torch._weight_int8pack_mm takes them)",
              zh="缺少 scale：x @ q.T 还要乘以每个输出行的 scale（torch._weight_int8pack_mm 接受它们作为参数）")
def int8_linear_unscaled(x, w):
    return torch.nn.functional.linear(x, w.q.to(x.dtype))


@spec.mistake("is_quantized", "int8_embedding_quantized",
              en="the embedding table is quantized: it is a lookup, one row per token, so int8 saves no reading time "
                 "there; keep tok_embeddings.weight as it is (output.weight, a matmul, is quantized)",
              zh="嵌入表也被量化了：它只是查表，每个 token 读一行，int8 在这里省不了读取时间；保持 "
                 "tok_embeddings.weight 不变（output.weight 是矩阵乘法，要量化）")
def is_quantized_with_embedding(name):
    return ex16_int8.is_quantized(name) or name == "tok_embeddings.weight"
