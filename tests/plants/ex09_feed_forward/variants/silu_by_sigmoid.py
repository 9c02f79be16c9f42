"""SiLU written out as gate * sigmoid(gate)."""

import torch


def feed_forward(x, w1, w2, w3):
    gate = x @ w1.T
    return (gate * torch.sigmoid(gate) * (x @ w3.T)) @ w2.T
