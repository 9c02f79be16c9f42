"""A cache that grows by torch.cat instead of being preallocated."""

import torch


class KVCache:
    def __init__(self, n_layers, max_seq_len, n_kv_heads, head_dim, dtype, device=None):
        self.keys = [torch.empty(0, n_kv_heads, head_dim, dtype=dtype, device=device) for _ in range(n_layers)]
        self.values = [torch.empty(0, n_kv_heads, head_dim, dtype=dtype, device=device) for _ in range(n_layers)]

    def update(self, layer_id, start_pos, k, v):
        self.keys[layer_id] = torch.cat([self.keys[layer_id][:start_pos], k])
        self.values[layer_id] = torch.cat([self.values[layer_id][:start_pos], v])
        return self.keys[layer_id], self.values[layer_id]
