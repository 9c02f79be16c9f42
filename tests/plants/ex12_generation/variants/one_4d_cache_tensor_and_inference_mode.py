"""Keys and values of every layer in one tensor [2, n_layers, max_seq_len, n_kv_heads, head_dim]; the forward
calls of generate under torch.inference_mode."""

import torch

from solutions.ex12_generation import forward


class KVCache:
    def __init__(self, n_layers, max_seq_len, n_kv_heads, head_dim, dtype):
        self.kv = torch.zeros(2, n_layers, max_seq_len, n_kv_heads, head_dim, dtype=dtype)

    def update(self, layer_id, start_pos, k, v):
        end = start_pos + k.shape[0]
        self.kv[0, layer_id, start_pos:end] = k
        self.kv[1, layer_id, start_pos:end] = v
        return self.kv[0, layer_id, :end], self.kv[1, layer_id, :end]


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
    with torch.inference_mode():
        cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                        weights["tok_embeddings.weight"].dtype)
        logits = forward(torch.tensor(prompt_ids), weights, args, cache, 0)[-1]
    position = len(prompt_ids)
    for _ in range(max_new_tokens):
        token = int(torch.argmax(logits))
        if token in stop_tokens:
            break
        yield token, logits
        with torch.inference_mode():
            logits = forward(torch.tensor([token]), weights, args, cache, position)[-1]
        position += 1
