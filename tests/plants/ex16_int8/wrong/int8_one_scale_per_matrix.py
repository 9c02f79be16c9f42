"""One scale for the whole matrix (its largest magnitude / 127) repeated per row, not one per output channel."""

import torch

from solutions.ex16_int8 import Int8Weight

FAILURE_SAYS = "scale: 14 of 16 values outside the tolerance"


def quantize(weight):
    w = weight.float()
    scale = (w.abs().max().clamp_min(1e-12) / 127).expand(w.shape[0]).clone()
    return Int8Weight(torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8), scale)
