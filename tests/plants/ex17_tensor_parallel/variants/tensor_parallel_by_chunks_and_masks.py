"""Tensor parallelism by torch.chunk (K/V heads repeated before the chunks when ranks outnumber them), the
embedding masked by a product, ModelArgs copied and edited, a reduce on a copy, all_gather into zeros."""

import copy

import torch
import torch.distributed as dist

from solutions.ex17_tensor_parallel import KVCache, causal_mask, parallel_attention, precompute_freqs_cis, rms_norm


def split_dim(name):
    if name in ("tok_embeddings.weight", "output.weight"):
        return 0
    kind = name.rsplit(".", 2)[-2] if name.count(".") >= 2 else ""
    return {"wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "wo": 1, "w2": 1}.get(kind)


def shard(weight, dim, rank, world_size):
    return torch.chunk(weight, world_size, dim=dim)[rank].clone()


def shard_kv(weight, n_kv_heads, rank, world_size):
    heads = weight.unflatten(0, (n_kv_heads, -1))  # [n_kv_heads, head_dim, dim]
    if world_size > n_kv_heads:
        heads = heads.repeat_interleave(world_size // n_kv_heads, dim=0)
    return torch.chunk(heads, world_size, dim=0)[rank].flatten(0, 1).clone()


def local_args(args, world_size):
    local = copy.copy(args)
    local.n_heads = args.n_heads // world_size
    local.n_kv_heads = max(1, args.n_kv_heads // world_size)
    local.dim = args.dim // world_size
    return local


def parallel_embed(tokens, tok_embeddings):
    rows = tok_embeddings.shape[0]
    local = tokens - dist.get_rank() * rows
    inside = (local >= 0) & (local < rows)
    h = torch.nn.functional.embedding(local.clamp(0, rows - 1), tok_embeddings)
    h = h * inside.unsqueeze(-1).to(tok_embeddings.dtype)
    dist.all_reduce(h, op=dist.ReduceOp.SUM)
    return h


def parallel_feed_forward(x, w1, w2, w3):
    g = x @ w1.T
    partial = (torch.nn.functional.silu(g) * (x @ w3.T)) @ w2.T
    total = partial.clone()
    dist.all_reduce(total)
    return total


def parallel_forward(tokens, weights, args, cache=None, start_pos=0):
    n = tokens.shape[0]
    h = parallel_embed(tokens, weights["tok_embeddings.weight"])
    freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + n, args.rope_theta, args.rope_scale_factor)[start_pos:]
    mask = causal_mask(n, start_pos) if n > 1 else None
    for i in range(args.n_layers):
        def w(name, layer=i):
            return weights[f"layers.{layer}.{name}.weight"]

        h = h + parallel_attention(rms_norm(h, w("attention_norm"), args.norm_eps), weights, i, args, freqs_cis, mask,
                                   cache, start_pos)
        h = h + parallel_feed_forward(rms_norm(h, w("ffn_norm"), args.norm_eps), w("feed_forward.w1"),
                                      w("feed_forward.w2"), w("feed_forward.w3"))
    mine = rms_norm(h, weights["norm.weight"], args.norm_eps) @ weights["output.weight"].T
    gathered = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine.contiguous())
    return torch.cat(gathered, dim=1).to(torch.float32)


def parallel_generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
    local = local_args(args, dist.get_world_size())
    cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, local.n_kv_heads, args.head_dim,
                    weights["norm.weight"].dtype)
    position, pending = 0, list(prompt_ids)
    for _ in range(max_new_tokens):
        logits = parallel_forward(torch.tensor(pending), weights, args, cache, position)[-1]
        position += len(pending)
        token = int(torch.argmax(logits))
        if token in set(stop_tokens):
            break
        yield token, logits
        pending = [token]
