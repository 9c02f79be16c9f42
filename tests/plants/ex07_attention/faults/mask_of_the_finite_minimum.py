"""causal_mask holds float32's most negative finite number where -inf is expected."""

import torch

from solutions.ex07_attention import causal_mask

_reference_causal_mask = causal_mask


def causal_mask(seqlen, start_pos=0):
    return _reference_causal_mask(seqlen, start_pos).clamp_min(torch.finfo(torch.float32).min)
