"""Exercise 5, reference: queries, keys and values, split into heads."""

import torch


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight.T, with weight in PyTorch's [out_features, in_features] layout."""
    # x [seq, in], weight [out, in]
    return torch.nn.functional.linear(x, weight)  # [seq, out]


def project_qkv(
    x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor, n_heads: int, n_kv_heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project every token to queries, keys and values and view each as heads."""
    seqlen, dim = x.shape  # [seq, dim]
    head_dim = wq.shape[0] // n_heads
    q = linear(x, wq).view(seqlen, n_heads, head_dim)  # [seq, dim] -> [seq, n_heads, head_dim]
    k = linear(x, wk).view(seqlen, n_kv_heads, head_dim)  # [seq, dim] -> [seq, n_kv_heads, head_dim]
    v = linear(x, wv).view(seqlen, n_kv_heads, head_dim)  # [seq, dim] -> [seq, n_kv_heads, head_dim]
    return q, k, v
