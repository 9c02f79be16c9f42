"""The scores divided by head_dim instead of its square root: the softmax comes out too flat."""

import torch

FAILURE_SAYS = "attention (tiny-llama3, prompt42_head0) does not match the reference"


def attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / q.shape[-1]
    if mask is not None:
        scores = scores + mask.to(scores.dtype)
    return torch.softmax(scores.float(), dim=-1).type_as(q) @ v
