"""parallel_generate never looks at its stop tokens."""

import torch
import torch.distributed as dist

from solutions.ex17_tensor_parallel import KVCache, local_args, parallel_forward

FAILURE_SAYS = "yielded the stop token"


def parallel_generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
    cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, local_args(args, dist.get_world_size()).n_kv_heads,
                    args.head_dim, weights["tok_embeddings.weight"].dtype)
    tokens, start_pos = torch.tensor(prompt_ids), 0
    for _ in range(max_new_tokens):
        logits = parallel_forward(tokens, weights, args, cache, start_pos)[-1]
        token = int(logits.argmax())
        yield token, logits
        start_pos += tokens.shape[0]
        tokens = torch.tensor([token])
