"""RMSNorm as a division by the square root (not a product with rsqrt), the square as x * x."""

import torch


def rms_norm(x, weight, eps):
    x32 = x.to(torch.float32)
    return (x32 / torch.sqrt((x32 * x32).mean(dim=-1, keepdim=True) + eps)).to(x.dtype) * weight
