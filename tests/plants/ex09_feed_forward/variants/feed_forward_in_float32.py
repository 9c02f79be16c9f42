"""The whole feed-forward in float32, rounded once to the input's dtype at the end."""

import torch


def feed_forward(x, w1, w2, w3):
    x32 = x.float()
    return ((torch.nn.functional.silu(x32 @ w1.float().T) * (x32 @ w3.float().T)) @ w2.float().T).to(x.dtype)
