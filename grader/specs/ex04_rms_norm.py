"""Exercise 4, RMSNorm: golden calls and named mistakes."""

import torch

from ..engine.calls import Call, Ref
from .spec import Spec

spec = Spec("ex04_rms_norm")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Layer 0's attention norm on each prompt's embeddings, on inputs a thousand times smaller (where eps matters),
    and in float32."""
    m = spec.module
    a0 = next(iter(acts.values()))
    norm = {"weight": Ref("weight", "layers.0.attention_norm.weight"), "eps": model.checkpoint.args.norm_eps}
    weight32 = model.weights()["layers.0.attention_norm.weight"].float()
    out = [Call(m, "rms_norm", name, {"x": a.x, **norm}) for name, a in acts.items()]
    out += [Call(m, "rms_norm", "small_inputs", {"x": a0.x * 1e-3, **norm}),
            Call(m, "rms_norm", "float32", {"x": a0.x.float(), "weight": weight32, "eps": norm["eps"]},
                 tolerance="float32")]
    return out


@spec.mistake("rms_norm", "rms_norm_without_eps",
              en="this is RMSNorm without eps: add eps to the mean of squares before the square root (it matters for "
                 "small inputs)",
              zh="这是没有 eps 的 RMSNorm：在开方之前把 eps 加到平方均值上（输入很小时差别很大）")
def rms_norm_without_eps(x, weight, eps):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True))).type_as(x) * weight
