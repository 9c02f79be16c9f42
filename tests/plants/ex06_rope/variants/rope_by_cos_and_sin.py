"""RoPE without complex numbers: the frequencies by exp and log, the pairs rotated by cos and sin in float32."""

import math

import torch

from solutions.ex06_rope import apply_scaling


def precompute_freqs_cis(head_dim, end, theta, scale_factor=None):
    freqs = torch.exp(-math.log(theta) * torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    if scale_factor is not None:
        freqs = apply_scaling(freqs, scale_factor)
    angles = torch.arange(end, dtype=torch.float32)[:, None] * freqs[None, :]
    return torch.complex(angles.cos(), angles.sin())


def apply_rope(x, freqs_cis):
    even, odd = x.float()[..., 0::2], x.float()[..., 1::2]
    cos, sin = freqs_cis.real[:, None, :], freqs_cis.imag[:, None, :]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).to(x.dtype)
