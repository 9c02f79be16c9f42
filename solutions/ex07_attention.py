"""Exercise 7, reference: scaled dot-product attention with a causal mask."""

import math

import torch


def causal_mask(seqlen: int, start_pos: int = 0, device=None) -> torch.Tensor:
    """0 where a query may look, -inf where it would see the future; row i is position start_pos + i. Made on device
    (None: the default device)."""
    mask = torch.full((seqlen, seqlen), float("-inf"), device=device).triu(diagonal=1)  # [seq, seq]
    return torch.hstack([torch.zeros(seqlen, start_pos, device=device), mask])  # [seq, start_pos + seq]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim) + mask) v, the softmax in float32."""
    # q [..., seq, head_dim], k and v [..., kv_len, head_dim], mask [seq, kv_len]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # [..., seq, kv_len]
    if mask is not None:
        scores = scores + mask.to(scores.dtype)
    probs = torch.softmax(scores.float(), dim=-1).type_as(q)  # [..., seq, kv_len]
    return probs @ v  # [..., seq, head_dim]
