"""Exercise 8, grouped-query attention: golden calls and named mistakes."""

import torch

from solutions import ex05_qkv, ex06_rope, ex07_attention, ex08_multi_head_attention

from ..engine.calls import Call, Ref
from .checked_cache import drive_layer_cached
from .spec import Spec

spec = Spec("ex08_multi_head_attention")


@spec.cases
def calls(model, acts) -> list[Call]:
    """repeat_kv of each prompt's keys; all heads in float32; layer 0's whole attention sublayer, on each prompt and
    on the cached path; and (on the tiny models) the last two in bf16."""
    m = spec.module
    a0 = next(iter(acts.values()))
    out = [Call(m, "repeat_kv", name, {"x": a.k_rot, "n_rep": model.checkpoint.args.n_rep}) for name, a in acts.items()]

    def gqa(a, cast):
        return {"q": cast(a.q_rot), "k": cast(a.k_rot), "v": cast(a.v), "mask": a.mask}

    def attention(a, cast, dtype):
        return {"x": cast(a.x_normed), "weights": Ref("weights", dtype=dtype), "layer_id": 0, "args": Ref("args"),
                "freqs_cis": a.freqs_cis, "mask": a.mask}

    f32 = torch.Tensor.float
    out += [Call(m, "grouped_query_attention", name, gqa(a, f32), tolerance="float32") for name, a in acts.items()]
    out += [Call(m, "self_attention", name, attention(a, f32, "float32"), tolerance="float32 layers")
            for name, a in acts.items()]
    cached = {"x": f32(a0.x_normed), "weights": Ref("weights", dtype="float32"), "layer_id": 0, "args": Ref("args"),
              "freqs_cis": a0.freqs_cis}
    out += [Call(m, "self_attention", case, {**cached, "chunks": chunks}, tolerance="float32 layers",
                 driver=drive_layer_cached) for case, chunks in a0.cached.items()]
    if model.is_tiny:
        out += [Call(m, "grouped_query_attention", "prompt42_bf16", gqa(a0, lambda t: t), tolerance="bf16 attention"),
                Call(m, "self_attention", "prompt42_bf16", attention(a0, lambda t: t, ""), tolerance="bf16 attention")]
    return out


KV_HEADS_TILED = dict(
    en="K/V heads are tiled (0,1,0,1) instead of repeated in place (0,0,1,1): query head h reads kv head h // n_rep "
       "(repeat_interleave, not repeat)",
    zh="K/V 头被平铺成 (0,1,0,1)，而不是就地重复 (0,0,1,1)：第 h 个 query 头读取第 h // n_rep 个 kv 头"
       "（用 repeat_interleave，不是 repeat）")


@spec.mistake("repeat_kv", "kv_heads_tiled", **KV_HEADS_TILED)
def repeat_kv_tiled(x, n_rep):
    return x.repeat(1, n_rep, 1)


@spec.mistake("grouped_query_attention", "kv_heads_tiled_in_attention", **KV_HEADS_TILED)
def gqa_tiled(q, k, v, mask):
    seqlen, n_heads, head_dim = q.shape
    n_rep = n_heads // k.shape[1]
    k, v = repeat_kv_tiled(k, n_rep), repeat_kv_tiled(v, n_rep)
    out = ex07_attention.attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), mask)
    return out.transpose(0, 1).reshape(seqlen, n_heads * head_dim)


@spec.mistake("self_attention", "rope_after_cache",
              en="the cache holds keys without RoPE: rotate k (with this chunk's freqs_cis) before cache.update, so "
                 "every cached key keeps the rotation of its own position",
              zh="缓存里存的是没有 RoPE 的 key：先用这一段的 freqs_cis 旋转 k，再调用 cache.update，让每个缓存的 key "
                 "保持它自己位置的旋转")
def self_attention_rope_after_cache(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    p = f"layers.{layer_id}.attention."
    q, k, v = ex05_qkv.project_qkv(x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"],
                                   args.n_heads, args.n_kv_heads)
    if cache is not None:
        k, v = cache.update(layer_id, start_pos, k, v)
    q, k = ex06_rope.apply_rope(q, freqs_cis), ex06_rope.apply_rope(k, freqs_cis)
    out = ex08_multi_head_attention.grouped_query_attention(q, k, v, mask)
    return ex05_qkv.linear(out, weights[p + "wo.weight"])
