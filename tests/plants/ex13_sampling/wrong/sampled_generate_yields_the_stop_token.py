"""generate checks the stop tokens only after yielding the token: a stop token drawn by the sampler reaches the caller
(in the CLI, text ending in <|im_end|>)."""

import torch

from solutions.ex13_sampling import KVCache, forward

FAILURE_SAYS = "yielded the stop token"


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), sampler=None):
    cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                    weights["tok_embeddings.weight"].dtype)
    tokens, start_pos = torch.tensor(prompt_ids), 0
    for _ in range(max_new_tokens):
        logits = forward(tokens, weights, args, cache, start_pos)[-1]
        token = sampler(logits) if sampler is not None else int(logits.argmax())
        yield token, logits
        if token in stop_tokens:
            return
        start_pos += tokens.shape[0]
        tokens = torch.tensor([token])
