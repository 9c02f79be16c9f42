"""generate without a cache: the whole sequence recomputed every step (exercise 11's generate_uncached again)."""

import torch

from solutions.ex12_generation import forward

FAILURE_SAYS = "without a cache"


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
    ids = list(prompt_ids)
    for _ in range(max_new_tokens):
        logits = forward(torch.tensor(ids), weights, args)[-1]
        token = int(logits.argmax())
        if token in stop_tokens:
            return
        yield token, logits
        ids.append(token)
