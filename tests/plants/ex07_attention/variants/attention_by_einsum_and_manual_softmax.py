"""The mask by comparing positions; attention by einsum, q scaled before the product, the softmax written out."""

import math

import torch


def causal_mask(seqlen, start_pos=0):
    i = torch.arange(seqlen)[:, None] + start_pos
    j = torch.arange(start_pos + seqlen)[None, :]
    return torch.where(j > i, float("-inf"), 0.0)


def attention(q, k, v, mask):
    scores = torch.einsum("...qd,...kd->...qk", q / math.sqrt(q.shape[-1]), k)
    if mask is not None:
        scores = scores + mask.to(scores.dtype)
    scores = scores.float()
    weights = (scores - scores.amax(-1, keepdim=True)).exp()
    return torch.einsum("...qk,...kd->...qd", (weights / weights.sum(-1, keepdim=True)).to(q.dtype), v)
