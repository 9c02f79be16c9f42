"""Exercise 7, attention for one head: golden calls and named mistakes."""

import math

import torch

from solutions import ex07_attention

from ..engine.calls import Call
from .spec import Spec

spec = Spec("ex07_attention")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Masks of a prompt, of a chunk after cached tokens and of one decode step; the first and last query heads of
    each prompt in float32, and (on the tiny models) one head in bf16."""
    m, args = spec.module, model.checkpoint.args
    a0 = next(iter(acts.values()))
    out = [Call(m, "causal_mask", f"seq{s}_start{p}", {"seqlen": s, "start_pos": p})
           for s, p in ((17, 0), (4, 13), (1, 16))]

    def head(a, h, cast):
        kv = h // args.n_rep
        return {"q": cast(a.q_rot[:, h]), "k": cast(a.k_rot[:, kv]), "v": cast(a.v[:, kv]), "mask": a.mask}

    out += [Call(m, "attention", f"{name}_head{h}", head(a, h, torch.Tensor.float), tolerance="float32")
            for name, a in acts.items() for h in (0, args.n_heads - 1)]
    if model.is_tiny:
        out += [Call(m, "attention", "prompt42_head0_bf16", head(a0, 0, lambda t: t), tolerance="bf16 attention")]
    return out


@spec.mistake("causal_mask", "mask_hides_diagonal",
              en="the mask hides the diagonal: a token may attend to itself, so mask only j > i (triu with diagonal=1)",
              zh="掩码遮住了对角线：token 可以关注自己，只应遮住 j > i（triu 的 diagonal=1）")
def mask_hiding_the_diagonal(seqlen, start_pos=0):
    mask = torch.full((seqlen, seqlen), float("-inf")).triu(diagonal=0)
    return torch.hstack([torch.zeros(seqlen, start_pos), mask])


@spec.mistake("causal_mask", "mask_peeks_ahead",
              en="the mask lets each token see the next one: mask every j > i (triu with diagonal=1)",
              zh="掩码让每个 token 看到了下一个 token：要遮住所有 j > i（triu 的 diagonal=1）")
def mask_peeking_ahead(seqlen, start_pos=0):
    mask = torch.full((seqlen, seqlen), float("-inf")).triu(diagonal=2)
    return torch.hstack([torch.zeros(seqlen, start_pos), mask])


@spec.mistake("attention", "attention_unscaled",
              en="the scores are not divided by sqrt(head_dim): without it softmax saturates as head_dim grows",
              zh="分数没有除以 sqrt(head_dim)：不除的话 head_dim 越大 softmax 越饱和")
def attention_unscaled(q, k, v, mask):
    return ex07_attention.attention(q * math.sqrt(q.shape[-1]), k, v, mask)


@spec.mistake("attention", "attention_unmasked",
              en="the mask is not applied: add it to the scores before the softmax",
              zh="没有使用掩码：在 softmax 之前把它加到分数上")
def attention_unmasked(q, k, v, mask):
    return ex07_attention.attention(q, k, v, None)


@spec.mistake("attention", "softmax_over_queries",
              en="softmax runs over the wrong dimension: each query's weights over the keys must sum to 1 (dim=-1)",
              zh="softmax 用错了维度：每个 query 对所有 key 的权重之和应为 1（dim=-1）")
def attention_softmax_over_queries(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask.to(scores.dtype)
    return torch.softmax(scores.float(), dim=-2).nan_to_num().type_as(q) @ v
