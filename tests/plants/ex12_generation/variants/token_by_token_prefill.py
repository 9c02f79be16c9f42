"""The prompt fed through the cache one token at a time instead of in one prefill."""

import torch

from solutions.ex12_generation import KVCache, forward


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
    cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                    weights["tok_embeddings.weight"].dtype)
    for position, token in enumerate(prompt_ids):  # the prompt one token at a time, through the cache
        logits = forward(torch.tensor([token]), weights, args, cache, position)[0]
    position = len(prompt_ids)
    for _ in range(max_new_tokens):
        token = int(logits.argmax())
        if token in stop_tokens:
            return
        yield token, logits
        logits = forward(torch.tensor([token]), weights, args, cache, position)[0]
        position += 1
