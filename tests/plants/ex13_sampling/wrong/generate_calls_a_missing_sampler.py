"""generate always calls its sampler, so sampler=None (greedy) raises."""

import torch

from solutions.ex13_sampling import KVCache, forward

FAILURE_SAYS = "'NoneType' object is not callable"


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), sampler=None):
    cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                    weights["tok_embeddings.weight"].dtype)
    tokens, start_pos = torch.tensor(prompt_ids), 0
    for _ in range(max_new_tokens):
        logits = forward(tokens, weights, args, cache, start_pos)[-1]
        token = sampler(logits)
        if token in stop_tokens:
            return
        yield token, logits
        start_pos += tokens.shape[0]
        tokens = torch.tensor([token])
