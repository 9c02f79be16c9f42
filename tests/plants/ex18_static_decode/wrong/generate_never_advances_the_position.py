"""generate computes the next position but never stores it (input_pos + 1 instead of input_pos += 1): every decode
step writes and reads position len(prompt_ids)."""

import torch

from solutions.ex18_static_decode import StaticCache, compile_step, decode_step, forward, rope_tables

FAILURE_SAYS = "tokens: logits of steps 0..15"


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), max_seq_len=None):
    if max_new_tokens < 1:
        return []
    device, dtype = weights["tok_embeddings.weight"].device, weights["tok_embeddings.weight"].dtype
    max_seq_len = max_seq_len or len(prompt_ids) + max_new_tokens
    cache = StaticCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype, device=device)
    rope = rope_tables(args.head_dim, max_seq_len, args.rope_theta, args.rope_scale_factor, device=device)
    step = compile_step(decode_step, device)
    input_pos = torch.arange(len(prompt_ids), device=device)
    logits = forward(torch.tensor(prompt_ids, device=device), input_pos, weights, args, cache, rope)[-1]
    token = logits.argmax(-1, keepdim=True)
    tokens, all_logits = [token], [logits]
    input_pos = input_pos[-1:] + 1
    for _ in range(max_new_tokens - 1):
        token, logits = step(token, input_pos, weights, args, cache, rope)
        token, logits = token.clone(), logits.clone()
        tokens.append(token)
        all_logits.append(logits)
        input_pos + 1  # the mistake: the sum is thrown away
    out = []
    for token, logits in zip(torch.cat(tokens).tolist(), all_logits):
        if token in stop_tokens:
            break
        out.append((token, logits))
    return out
