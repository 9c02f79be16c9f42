"""Exercise 9, the SwiGLU feed-forward: golden calls and named mistakes."""

from solutions import ex09_feed_forward

from ..engine.calls import Call, Ref
from .spec import Spec

spec = Spec("ex09_feed_forward")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Layer 0's feed-forward on each prompt in float32, and (on the tiny models) in bf16: on trained weights bf16
    roundings of SiLU take 0.76 of "bf16 layer"."""
    m = spec.module

    def ffn(dtype):
        return {f"w{i}": Ref("weight", f"layers.0.feed_forward.w{i}.weight", dtype) for i in (1, 2, 3)}

    out = [Call(m, "feed_forward", name, {"x": a.h_normed.float(), **ffn("float32")}, tolerance="float32 layers")
           for name, a in acts.items()]
    if model.is_tiny:
        out += [Call(m, "feed_forward", f"{name}_bf16", {"x": a.h_normed, **ffn("")}, tolerance="bf16 layer")
                for name, a in acts.items()]
    return out


@spec.mistake("feed_forward", "w1_w3_swapped",
              en="w1 and w3 are swapped: SiLU goes on w1 x (the gate), and w3 x is the plain branch it multiplies",
              zh="w1 和 w3 弄反了：SiLU 作用在 w1 x（门）上，w3 x 是与它相乘的普通分支")
def feed_forward_w1_w3_swapped(x, w1, w2, w3):
    return ex09_feed_forward.feed_forward(x, w3, w2, w1)
