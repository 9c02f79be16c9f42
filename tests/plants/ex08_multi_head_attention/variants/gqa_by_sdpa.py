"""Grouped-query attention by scaled_dot_product_attention with enable_gqa: K/V heads shared without repeat_kv."""

import torch


def grouped_query_attention(q, k, v, mask):
    out = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
        attn_mask=None if mask is None else mask.to(q.dtype), enable_gqa=True)
    return out.transpose(0, 1).reshape(q.shape[0], -1)
