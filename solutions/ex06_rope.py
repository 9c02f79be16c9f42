"""Exercise 6, reference: rotary position embeddings."""

import math

import torch


def apply_scaling(freqs: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Llama 3.1 frequency scaling: keep high frequencies, divide low ones, blend in between."""
    low_freq_factor, high_freq_factor, old_context_len = 1, 4, 8192
    low_freq_wavelen = old_context_len / low_freq_factor  # 8192
    high_freq_wavelen = old_context_len / high_freq_factor  # 2048
    wavelen = 2 * math.pi / freqs  # [head_dim // 2]
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    blended = (1 - smooth) * freqs / scale_factor + smooth * freqs
    scaled = torch.where(wavelen > low_freq_wavelen, freqs / scale_factor, blended)
    return torch.where(wavelen < high_freq_wavelen, freqs, scaled)  # [head_dim // 2]


def precompute_freqs_cis(
    head_dim: int, end: int, theta: float, scale_factor: float | None = None, device=None
) -> torch.Tensor:
    """exp(i * t * f_k) for positions t in [0, end) and frequencies f_k = theta^(-2k/head_dim), made on device
    (None: the default device)."""
    exponents = torch.arange(0, head_dim, 2, device=device)[: head_dim // 2].float() / head_dim  # [head_dim // 2]
    freqs = 1.0 / (theta ** exponents)  # [head_dim // 2]
    if scale_factor is not None:
        freqs = apply_scaling(freqs, scale_factor)
    t = torch.arange(end, dtype=torch.float32, device=device)  # [end]
    angles = torch.outer(t, freqs)  # [end, head_dim // 2]
    return torch.polar(torch.ones_like(angles), angles)  # [end, head_dim // 2] complex64


def apply_rope(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """Rotate each adjacent pair (2k, 2k+1) of every head by its position's angle."""
    # x [seq, n_heads, head_dim], freqs_cis [seq, head_dim // 2]
    if x.device.type == "mps":  # complex arithmetic on MPS varies with macOS and torch: the same rotation by cos, sin
        cos, sin = freqs_cis.real[:, None, :], freqs_cis.imag[:, None, :]  # [seq, 1, head_dim // 2] x 2
        even, odd = x.float()[..., 0::2], x.float()[..., 1::2]  # [seq, n_heads, head_dim // 2] x 2
        return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).type_as(x)
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # [seq, n_heads, head_dim // 2]
    rotated = pairs * freqs_cis[:, None, :]  # [seq, n_heads, head_dim // 2]
    return torch.view_as_real(rotated).flatten(-2).type_as(x)  # [seq, n_heads, head_dim]
