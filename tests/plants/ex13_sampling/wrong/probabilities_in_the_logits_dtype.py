"""probabilities computed in the logits' own dtype: bf16 logits give bf16 probabilities, 8 bits each."""

import torch

from solutions.ex13_sampling import top_k_filter, top_p_filter

FAILURE_SAYS = "dtype bfloat16, expected float32"


def probabilities(logits, temperature, top_k=None, top_p=None):
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)
