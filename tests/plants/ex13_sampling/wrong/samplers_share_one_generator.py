"""Every Sampler draws from one generator of the module, seeded again by each new Sampler: one sampler alone gives
its seed's tokens, two drawn in turn take each other's random numbers."""

import torch

from solutions.ex13_sampling import sample

FAILURE_SAYS = "two_in_turn"

_GENERATOR = torch.Generator()


class Sampler:
    def __init__(self, temperature=1.0, top_k=None, top_p=None, seed=0):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        _GENERATOR.manual_seed(seed)

    def __call__(self, logits):
        return sample(logits, self.temperature, self.top_k, self.top_p, _GENERATOR)
