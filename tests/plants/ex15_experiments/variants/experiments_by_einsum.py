"""Attention maps by einsum with K/V heads repeated by repeat_interleave and the mask by masked_fill; the top
predictions by a full sort; RoPE's points by complex multiplication."""

import math

import torch

from solutions.ex15_experiments import (
    apply_rope,
    causal_mask,
    embed,
    precompute_freqs_cis,
    project_qkv,
    rms_norm,
    transformer_block,
)


def attention_probs(tokens, weights, args, layer_id):
    n = len(tokens)
    freqs_cis = precompute_freqs_cis(args.head_dim, n, args.rope_theta, args.rope_scale_factor)
    h = embed(tokens, weights["tok_embeddings.weight"])
    for i in range(layer_id):
        h = transformer_block(h, weights, i, args, freqs_cis, causal_mask(n))
    x = rms_norm(h, weights[f"layers.{layer_id}.attention_norm.weight"], args.norm_eps)
    wq, wk, wv = (weights[f"layers.{layer_id}.attention.w{w}.weight"] for w in "qkv")
    q, k, _ = project_qkv(x, wq, wk, wv, args.n_heads, args.n_kv_heads)
    q, k = apply_rope(q, freqs_cis).float(), apply_rope(k, freqs_cis).float()
    k = k.repeat_interleave(args.n_rep, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)


def top_predictions(logits, k):
    probs, ids = torch.sort(torch.softmax(logits.float(), -1), dim=-1, descending=True)
    return probs[:, :k], ids[:, :k]


def rope_rotation(x, freqs_cis):
    pairs = torch.view_as_complex(x.float().reshape(-1, 2).contiguous())
    return torch.view_as_real(pairs[None, :] * freqs_cis)
