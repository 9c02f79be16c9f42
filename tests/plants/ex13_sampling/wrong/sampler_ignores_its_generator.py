"""sample draws from torch's global generator instead of the one given: a seed no longer repeats the tokens."""

import torch

from solutions.ex13_sampling import probabilities

FAILURE_SAYS = "tokens drawn twice with the same seed"


def sample(logits, temperature, top_k, top_p, generator):
    if temperature == 0:
        return int(logits.argmax())
    return int(torch.multinomial(probabilities(logits, temperature, top_k, top_p), num_samples=1))
