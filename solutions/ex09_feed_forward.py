"""Exercise 9, reference: the SwiGLU feed-forward network."""

import torch
import torch.nn.functional as F

from .ex05_qkv import linear


def feed_forward(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor) -> torch.Tensor:
    """w2(silu(w1 x) * w3 x)."""
    # x [seq, dim], w1 and w3 [hidden_dim, dim], w2 [dim, hidden_dim]
    gate = F.silu(linear(x, w1))  # [seq, hidden_dim]
    up = linear(x, w3)  # [seq, hidden_dim]
    return linear(gate * up, w2)  # [seq, dim]
