"""RMSNorm with the weight multiplied in float32, before the cast back (transformers' order is the reference's)."""

import torch


def rms_norm(x, weight, eps):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)
