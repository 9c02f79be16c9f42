"""RoPE rotated in the input's dtype (cos and sin rounded to bf16 first), as transformers does, not in float32."""

import torch


def apply_rope(x, freqs_cis):
    cos, sin = freqs_cis.real[:, None, :].to(x.dtype), freqs_cis.imag[:, None, :].to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)
