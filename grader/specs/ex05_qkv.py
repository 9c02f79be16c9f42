"""Exercise 5, queries, keys and values: golden calls."""

from ..engine.calls import Call, Ref
from .spec import Spec

spec = Spec("ex05_qkv")


@spec.cases
def calls(model, acts) -> list[Call]:
    """One projection, then layer 0's q, k and v of each prompt's normed embeddings."""
    m, args = "ex05_qkv", model.checkpoint.args
    a0 = next(iter(acts.values()))
    wqkv = {f"w{x}": Ref("weight", f"layers.0.attention.w{x}.weight") for x in "qkv"}
    out = [Call(m, "linear", "prompt", {"x": a0.x_normed, "weight": wqkv["wq"]})]
    out += [Call(m, "project_qkv", name, {"x": a.x_normed, **wqkv, "n_heads": args.n_heads, "n_kv_heads": args.n_kv_heads},
                 outputs=("q", "k", "v")) for name, a in acts.items()]
    return out
