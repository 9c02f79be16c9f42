"""Exercise 8, reference: grouped-query multi-head self-attention."""

import torch

from .ex02_checkpoint import ModelArgs
from .ex05_qkv import linear, project_qkv
from .ex06_rope import apply_rope
from .ex07_attention import attention


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Repeat each kv head n_rep times in place order, so query head h reads kv head h // n_rep."""
    # x [kv_len, n_kv_heads, head_dim]
    return torch.repeat_interleave(x, n_rep, dim=1)  # [kv_len, n_kv_heads * n_rep, head_dim]


def grouped_query_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Attention for all query heads at once, K/V heads shared by groups; heads concatenated."""
    seqlen, n_heads, head_dim = q.shape  # [seq, n_heads, head_dim]
    n_rep = n_heads // k.shape[1]
    k = repeat_kv(k, n_rep)  # [kv_len, n_kv_heads, head_dim] -> [kv_len, n_heads, head_dim]
    v = repeat_kv(v, n_rep)  # [kv_len, n_kv_heads, head_dim] -> [kv_len, n_heads, head_dim]
    # Heads first, and contiguous: then attention's k.transpose(-2, -1) is a free view. A merely transposed K
    # would be copied element by element inside the matmul, in every layer, for every new token.
    k = k.transpose(0, 1).contiguous()  # [n_heads, kv_len, head_dim]
    v = v.transpose(0, 1).contiguous()  # [n_heads, kv_len, head_dim]
    out = attention(q.transpose(0, 1), k, v, mask)  # [n_heads, seq, head_dim]
    return out.transpose(0, 1).reshape(seqlen, n_heads * head_dim)  # [seq, n_heads * head_dim]


def self_attention(
    x: torch.Tensor,
    weights: dict[str, torch.Tensor],
    layer_id: int,
    args: ModelArgs,
    freqs_cis: torch.Tensor,
    mask: torch.Tensor | None,
    cache=None,
    start_pos: int = 0,
) -> torch.Tensor:
    """Layer layer_id's attention: project, rotate q and k, attend (through the cache if given), wo."""
    p = f"layers.{layer_id}.attention."
    q, k, v = project_qkv(
        x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"], args.n_heads, args.n_kv_heads
    )  # [seq, n_heads, head_dim], [seq, n_kv_heads, head_dim] x 2
    q = apply_rope(q, freqs_cis)
    k = apply_rope(k, freqs_cis)
    if cache is not None:
        k, v = cache.update(layer_id, start_pos, k, v)  # [start_pos + seq, n_kv_heads, head_dim] x 2
    out = grouped_query_attention(q, k, v, mask)  # [seq, n_heads * head_dim]
    return linear(out, weights[p + "wo.weight"])  # [seq, dim]
