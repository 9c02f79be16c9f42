"""Positions made in float16, which holds integers exactly only up to 2048: 2049 becomes 2048, so past it tokens turn
by their neighbour's angle."""

import torch

from solutions.ex06_rope import apply_scaling

FAILURE_SAYS = "positions 2046..2051"


def precompute_freqs_cis(head_dim, end, theta, scale_factor=None, device=None):
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device)[: head_dim // 2].float() / head_dim)
    if scale_factor is not None:
        freqs = apply_scaling(freqs, scale_factor)
    positions = torch.arange(end, dtype=torch.float16, device=device).float()
    angles = torch.outer(positions, freqs)
    return torch.polar(torch.ones_like(angles), angles)
