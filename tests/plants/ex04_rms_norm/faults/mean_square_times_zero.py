"""rms_norm takes rsqrt of the mean square times 0: inf (and NaN) in the output."""

import torch


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) * 0) * weight
