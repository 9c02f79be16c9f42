"""parallel_embed all-reduces on rank 0 only: rank 0 waits in vain for the others until gloo gives up. After the first
such wait, parallel_embed's other cases and tests fail at once instead of waiting again."""

import torch
import torch.distributed as dist

from solutions.ex17_tensor_parallel import embed


def parallel_embed(tokens, tok_embeddings):
    rows = tok_embeddings.shape[0]
    start = dist.get_rank() * rows
    mine = (tokens >= start) & (tokens < start + rows)
    h = embed(torch.where(mine, tokens - start, 0), tok_embeddings).masked_fill(~mine[:, None], 0)
    if dist.get_rank() == 0:
        dist.all_reduce(h)
    return h
