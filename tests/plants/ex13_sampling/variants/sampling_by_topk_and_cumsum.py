"""Top-k by the rank of each logit (argsort twice), top-p by a shifted cumulative sum scattered back, the
softmax written out; Sampler keeps its settings as a tuple."""

import torch

from solutions.ex13_sampling import sample


def top_k_filter(logits, k):
    ranks = torch.argsort(torch.argsort(logits, dim=-1, descending=True, stable=True), dim=-1)
    return torch.where(ranks < k, logits, torch.full_like(logits, float("-inf")))


def top_p_filter(logits, p):
    probs = logits.float().softmax(-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
    keep_sorted = torch.cat([torch.ones_like(sorted_probs[..., :1]), sorted_probs.cumsum(-1)[..., :-1]], -1) < p
    keep_sorted[..., 0] = True
    keep = torch.empty_like(keep_sorted).scatter_(-1, order, keep_sorted)
    return logits.where(keep, float("-inf"))


def probabilities(logits, temperature, top_k=None, top_p=None):
    scaled = logits.to(torch.float32) / temperature
    if top_k:
        scaled = top_k_filter(scaled, top_k)
    if top_p:
        scaled = top_p_filter(scaled, top_p)
    e = (scaled - scaled.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


class Sampler:
    def __init__(self, temperature=1.0, top_k=None, top_p=None, seed=0):
        self.settings = (temperature, top_k, top_p)
        self.rng = torch.Generator()
        self.rng.manual_seed(seed)

    def __call__(self, logits):
        return sample(logits, *self.settings, self.rng)
