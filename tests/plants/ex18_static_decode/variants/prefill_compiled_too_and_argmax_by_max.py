"""The prefill compiled as well (a second compiled function, traced once); the next token by torch.max's indices;
positions made with torch.tensor; tokens and logits stacked once at the end."""

import torch

from solutions.ex18_static_decode import StaticCache, compile_step, forward, rope_tables


def decode_step(token, input_pos, weights, args, cache, rope):
    logits = forward(token, input_pos, weights, args, cache, rope)[0]
    return torch.max(logits, dim=-1, keepdim=True).indices, logits


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), max_seq_len=None):
    if max_new_tokens < 1:
        return []
    embeddings = weights["tok_embeddings.weight"]
    length = max_seq_len or len(prompt_ids) + max_new_tokens
    cache = StaticCache(args.n_layers, length, args.n_kv_heads, args.head_dim, embeddings.dtype, embeddings.device)
    rope = rope_tables(args.head_dim, length, args.rope_theta, args.rope_scale_factor, embeddings.device)
    for weight in weights.values():
        torch._dynamo.mark_static_address(weight)
    prefill, step = torch.compile(forward, dynamic=True), compile_step(decode_step, embeddings.device)
    logits = prefill(torch.tensor(prompt_ids, device=embeddings.device),
                     torch.arange(len(prompt_ids), device=embeddings.device), weights, args, cache, rope)[-1]
    steps = [(torch.max(logits, dim=-1, keepdim=True).indices, logits)]
    input_pos = torch.tensor([len(prompt_ids)], device=embeddings.device)
    for _ in range(max_new_tokens - 1):
        token, logits = step(steps[-1][0], input_pos, weights, args, cache, rope)
        steps.append((token.clone(), logits.clone()))
        input_pos += 1
    tokens = torch.cat([t for t, _ in steps]).tolist()
    logits = torch.stack([x for _, x in steps])
    kept = []
    for i, token in enumerate(tokens):
        if token in stop_tokens:
            break
        kept.append((token, logits[i]))
    return kept
