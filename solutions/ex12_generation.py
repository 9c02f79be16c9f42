"""Exercise 12, reference: a preallocated KV cache and cached greedy generation."""

from collections.abc import Iterator

import torch

from .ex02_checkpoint import ModelArgs
from .ex11_forward import forward


class KVCache:
    """Keys (after RoPE) and values of every layer, preallocated for max_seq_len positions."""

    def __init__(self, n_layers: int, max_seq_len: int, n_kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device=None):
        """Zeros on device (None: the default device)."""
        shape = (max_seq_len, n_kv_heads, head_dim)  # each list: n_layers x [max_seq, n_kv_heads, head_dim]
        self.cache_k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.cache_v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]

    def update(
        self, layer_id: int, start_pos: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v at positions start_pos.. and return everything cached so far for this layer."""
        end = start_pos + k.shape[0]  # k, v [seq, n_kv_heads, head_dim]
        self.cache_k[layer_id][start_pos:end] = k
        self.cache_v[layer_id][start_pos:end] = v
        return self.cache_k[layer_id][:end], self.cache_v[layer_id][:end]  # [end, n_kv_heads, head_dim] x 2


def generate(
    prompt_ids: list[int], weights: dict[str, torch.Tensor], args: ModelArgs, max_new_tokens: int, stop_tokens=()
) -> Iterator[tuple[int, torch.Tensor]]:
    """Prefill the prompt once, then feed one token at a time through the cache; yields (token, logits)."""
    max_seq_len = len(prompt_ids) + max_new_tokens
    dtype, device = weights["tok_embeddings.weight"].dtype, weights["tok_embeddings.weight"].device
    cache = KVCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype, device=device)
    tokens = torch.tensor(prompt_ids, device=device)  # [prompt_len]
    start_pos = 0
    for _ in range(max_new_tokens):
        logits = forward(tokens, weights, args, cache, start_pos)[-1]  # [vocab_size]
        token = int(logits.argmax())
        if token in stop_tokens:
            return
        yield token, logits
        start_pos += tokens.shape[0]
        tokens = torch.tensor([token], device=device)  # [1]
