"""One query head at a time, each reading K/V head h // n_rep, the outputs concatenated."""

import torch

from solutions.ex08_multi_head_attention import attention


def grouped_query_attention(q, k, v, mask):
    n_rep = q.shape[1] // k.shape[1]
    heads = [attention(q[:, h], k[:, h // n_rep], v[:, h // n_rep], mask) for h in range(q.shape[1])]
    return torch.cat(heads, dim=-1)
