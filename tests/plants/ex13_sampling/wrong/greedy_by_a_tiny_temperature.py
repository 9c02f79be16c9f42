"""Temperature 0 replaced by a tiny temperature: the draw is the argmax, but it takes a random number from the
generator, so every later draw moves."""

import torch

from solutions.ex13_sampling import probabilities

FAILURE_SAYS = "sample (tiny-llama3, greedy"


def sample(logits, temperature, top_k, top_p, generator):
    probs = probabilities(logits, max(temperature, 1e-4), top_k, top_p)
    return int(torch.multinomial(probs.to(generator.device), num_samples=1, generator=generator))
