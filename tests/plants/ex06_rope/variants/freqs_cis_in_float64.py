"""The table computed in float64 (frequencies, positions, angles, cos and sin), then rounded to complex64 once: closer
to exact arithmetic than float32 at long positions."""

import torch

from solutions.ex06_rope import apply_scaling


def precompute_freqs_cis(head_dim, end, theta, scale_factor=None, device=None):
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float64, device=device)[: head_dim // 2] / head_dim
    freqs = theta ** -exponents
    if scale_factor is not None:
        freqs = apply_scaling(freqs, scale_factor)
    angles = torch.arange(end, dtype=torch.float64, device=device)[:, None] * freqs[None, :]
    return torch.complex(angles.cos(), angles.sin()).to(torch.complex64)
