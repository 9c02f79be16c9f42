"""The frequencies theta^(-i / head_dim) for i = 0, 1, 2, ... instead of theta^(-2i / head_dim): the slowest pair
turns far too fast."""

import torch

from solutions.ex06_rope import apply_scaling

FAILURE_SAYS = "f_i = theta^(-2i/head_dim), as published"


def precompute_freqs_cis(head_dim, end, theta, scale_factor=None):
    freqs = 1.0 / theta ** (torch.arange(head_dim // 2, dtype=torch.float32) / head_dim)
    if scale_factor is not None:
        freqs = apply_scaling(freqs, scale_factor)
    angles = torch.outer(torch.arange(end, dtype=torch.float32), freqs)
    return torch.polar(torch.ones_like(angles), angles)
