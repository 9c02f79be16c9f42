"""The mask compares with < instead of <=: a query may not look at its own position, so position 0 sees nothing at
all and its softmax is NaN."""

import torch

FAILURE_SAYS = "prefill: 17 of 357 values outside the tolerance"


def attention_mask(input_pos, max_seq_len):
    positions = torch.arange(max_seq_len, device=input_pos.device)
    visible = positions[None, :] < input_pos[:, None]
    return torch.zeros(visible.shape, device=input_pos.device).masked_fill(~visible, float("-inf"))
