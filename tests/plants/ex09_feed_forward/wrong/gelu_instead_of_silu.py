"""The gate through GELU, as in GPT-2's MLP, instead of SiLU: Llama's feed-forward is SwiGLU."""

import torch

FAILURE_SAYS = "out = w2( silu(w1 x) * (w3 x) )"


def feed_forward(x, w1, w2, w3):
    return (torch.nn.functional.gelu(x @ w1.T) * (x @ w3.T)) @ w2.T
