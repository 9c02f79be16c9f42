"""linear by einsum; Q, K and V from one product with the three matrices stacked, split afterwards."""

import torch


def linear(x, weight):
    return torch.einsum("si,oi->so", x, weight)


def project_qkv(x, wq, wk, wv, n_heads, n_kv_heads):
    head_dim = wq.shape[0] // n_heads
    q, k, v = (x @ torch.cat([wq, wk, wv]).T).split([wq.shape[0], wk.shape[0], wv.shape[0]], dim=-1)
    return (q.unflatten(-1, (n_heads, head_dim)), k.unflatten(-1, (n_kv_heads, head_dim)),
            v.unflatten(-1, (n_kv_heads, head_dim)))
