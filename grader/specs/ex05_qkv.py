"""Exercise 5, queries, keys and values: golden calls and named mistakes."""

import torch

from ..engine.calls import Call, Ref
from .spec import Spec

spec = Spec("ex05_qkv")


@spec.cases
def calls(model, acts) -> list[Call]:
    """One projection, then layer 0's q, k and v of each prompt's normed embeddings."""
    m, args = spec.module, model.checkpoint.args
    a0 = next(iter(acts.values()))
    wqkv = {f"w{x}": Ref("weight", f"layers.0.attention.w{x}.weight") for x in "qkv"}
    out = [Call(m, "linear", "prompt", {"x": a0.x_normed, "weight": wqkv["wq"]})]
    heads = {"n_heads": args.n_heads, "n_kv_heads": args.n_kv_heads}
    out += [Call(m, "project_qkv", name, {"x": a.x_normed, **wqkv, **heads}, outputs=("q", "k", "v"))
            for name, a in acts.items()]
    return out


@spec.mistake("linear", "weight_not_transposed",
              en="x is multiplied by weight, not by its transpose: Meta's weights are [out_features, in_features] "
                 "(PyTorch's nn.Linear layout), so the projection is x @ weight.T (torch.nn.functional.linear)",
              zh="x 乘的是 weight 而不是它的转置：Meta 的权重是 [out_features, in_features]（PyTorch nn.Linear "
                 "的布局），所以投影是 x @ weight.T（torch.nn.functional.linear）")
def linear_not_transposed(x, weight):
    return x @ weight


@spec.mistake("project_qkv", "heads_interleaved",
              en="the heads are split the wrong way: head h is the h-th block of head_dim consecutive columns, "
                 "view(seq, n_heads, head_dim), not every n_heads-th column (view(seq, head_dim, n_heads) transposed)",
              zh="头切分错了：第 h 个头是第 h 段连续的 head_dim 列，即 view(seq, n_heads, head_dim)，"
                 "而不是每隔 n_heads 列取一列（view(seq, head_dim, n_heads) 再转置）")
def project_qkv_heads_interleaved(x, wq, wk, wv, n_heads, n_kv_heads):
    seqlen = x.shape[0]
    head_dim = wq.shape[0] // n_heads

    def heads(w, n):  # [seq, n * head_dim] -> [seq, n, head_dim], columns dealt out to the heads in turn
        return torch.nn.functional.linear(x, w).view(seqlen, head_dim, n).transpose(1, 2)

    return heads(wq, n_heads), heads(wk, n_kv_heads), heads(wv, n_kv_heads)
