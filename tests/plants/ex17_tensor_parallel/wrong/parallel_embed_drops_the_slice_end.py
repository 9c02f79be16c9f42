"""The vocab-parallel embedding takes a rank's slice to end one id early: the last id of every slice (vocab_size - 1
on one rank) gets zeros."""

import torch
import torch.distributed as dist

from solutions.ex17_tensor_parallel import embed

FAILURE_SAYS = "slice_edges) does not match the reference"


def parallel_embed(tokens, tok_embeddings):
    rows = tok_embeddings.shape[0]
    start = dist.get_rank() * rows
    mine = (tokens >= start) & (tokens < start + rows - 1)
    h = embed(torch.where(mine, tokens - start, 0), tok_embeddings).masked_fill(~mine[:, None], 0)
    dist.all_reduce(h)
    return h
