"""RMSNorm that subtracts the mean first, as LayerNorm does: Llama's RMSNorm does not centre."""

import torch

FAILURE_SAYS = "rms_norm (tiny-llama3, prompt42) does not match the reference"


def rms_norm(x, weight, eps):
    x32 = x.float()
    x32 = x32 - x32.mean(-1, keepdim=True)
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * weight
