"""Exercise 17, reference: tensor parallelism in Meta's model-parallel layout, over torch.distributed."""

import dataclasses
from collections.abc import Iterator

import torch
import torch.distributed as dist

from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex05_qkv import linear
from .ex06_rope import precompute_freqs_cis
from .ex07_attention import causal_mask
from .ex08_multi_head_attention import self_attention
from .ex09_feed_forward import feed_forward
from .ex12_generation import KVCache

COLUMN_PARALLEL = ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "feed_forward.w1.weight",
                   "feed_forward.w3.weight")
ROW_PARALLEL = ("attention.wo.weight", "feed_forward.w2.weight")
VOCAB_PARALLEL = ("tok_embeddings.weight", "output.weight")
KV = ("attention.wk.weight", "attention.wv.weight")


def split_dim(name: str) -> int | None:
    """The dimension Meta's layout splits a weight along: 0 for column- and vocab-parallel, 1 for row-parallel,
    None for the norms, which every rank holds whole."""
    if name in VOCAB_PARALLEL or name.endswith(COLUMN_PARALLEL):
        return 0  # [out, in] -> [out / world_size, in]
    if name.endswith(ROW_PARALLEL):
        return 1  # [out, in] -> [out, in / world_size]
    return None


def shard(weight: torch.Tensor, dim: int, rank: int, world_size: int) -> torch.Tensor:
    """rank's 1/world_size of weight along dim, contiguous (a view when it already is)."""
    size = weight.shape[dim] // world_size
    return weight.narrow(dim, rank * size, size).contiguous()


def shard_kv(weight: torch.Tensor, n_kv_heads: int, rank: int, world_size: int) -> torch.Tensor:
    """wk or wv: rank's K/V heads. With more ranks than K/V heads, each head is held by world_size // n_kv_heads
    ranks in a row, so that rank's query heads find the head they read (query head h reads K/V head h // n_rep)."""
    if world_size <= n_kv_heads:
        return shard(weight, 0, rank, world_size)  # [n_kv_heads / world_size * head_dim, dim]
    head_dim = weight.shape[0] // n_kv_heads
    return weight.view(n_kv_heads, head_dim, -1)[rank // (world_size // n_kv_heads)]  # [head_dim, dim]


def shard_weights(weights: dict[str, torch.Tensor], args: ModelArgs, rank: int,
                  world_size: int) -> dict[str, torch.Tensor]:
    """rank's share of every weight, under Meta's names."""
    out = {}
    for name, w in weights.items():
        if name.endswith(KV):
            out[name] = shard_kv(w, args.n_kv_heads, rank, world_size)
        elif (dim := split_dim(name)) is not None:
            out[name] = shard(w, dim, rank, world_size)
        else:
            out[name] = w
    return out


def local_args(args: ModelArgs, world_size: int):
    """The ModelArgs of one rank's attention: its query and K/V heads, with head_dim unchanged."""
    n_heads = args.n_heads // world_size
    return dataclasses.replace(args, n_heads=n_heads, n_kv_heads=max(args.n_kv_heads // world_size, 1),
                               dim=n_heads * args.head_dim)


def parallel_embed(tokens: torch.Tensor, tok_embeddings: torch.Tensor) -> torch.Tensor:
    """Vocab-parallel lookup: each rank fills in the tokens of its slice of the vocabulary, zeros elsewhere; the
    all-reduce sums the ranks' rows into every token's vector."""
    rows = tok_embeddings.shape[0]  # vocab_size / world_size
    start = dist.get_rank() * rows
    mine = (tokens >= start) & (tokens < start + rows)  # [seq] bool
    h = embed(torch.where(mine, tokens - start, 0), tok_embeddings)  # [seq, dim]
    h = h.masked_fill(~mine[:, None], 0)
    dist.all_reduce(h)
    return h  # [seq, dim]


def parallel_attention(x: torch.Tensor, weights: dict[str, torch.Tensor], layer_id: int, args: ModelArgs,
                       freqs_cis: torch.Tensor, mask: torch.Tensor | None, cache=None,
                       start_pos: int = 0) -> torch.Tensor:
    """This rank's heads through exercise 8 (column-parallel q, k, v), then the row-parallel wo's all-reduce."""
    out = self_attention(x, weights, layer_id, local_args(args, dist.get_world_size()), freqs_cis, mask, cache,
                         start_pos)
    dist.all_reduce(out)  # [seq, dim]: the sum of every rank's heads through its columns of wo
    return out


def parallel_feed_forward(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor) -> torch.Tensor:
    """This rank's hidden units through exercise 9 (column-parallel w1, w3, row-parallel w2), then the all-reduce."""
    out = feed_forward(x, w1, w2, w3)  # [seq, dim]: the share of this rank's hidden units
    dist.all_reduce(out)
    return out


def parallel_forward(tokens: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs, cache=None,
                     start_pos: int = 0) -> torch.Tensor:
    """The forward of exercise 11 on one rank's shards; every rank returns the whole [seq, vocab_size] logits."""
    seqlen = tokens.shape[0]  # tokens [seq]
    h = parallel_embed(tokens, weights["tok_embeddings.weight"])  # [seq, dim]
    freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + seqlen, args.rope_theta, args.rope_scale_factor,
                                     device=tokens.device)[start_pos:]  # [seq, head_dim // 2]
    mask = causal_mask(seqlen, start_pos, device=tokens.device) if seqlen > 1 else None  # [seq, start_pos + seq]
    for layer_id in range(args.n_layers):
        p = f"layers.{layer_id}."
        normed = rms_norm(h, weights[p + "attention_norm.weight"], args.norm_eps)
        h = h + parallel_attention(normed, weights, layer_id, args, freqs_cis, mask, cache, start_pos)
        normed = rms_norm(h, weights[p + "ffn_norm.weight"], args.norm_eps)
        h = h + parallel_feed_forward(normed, weights[p + "feed_forward.w1.weight"],
                                      weights[p + "feed_forward.w2.weight"], weights[p + "feed_forward.w3.weight"])
    h = rms_norm(h, weights["norm.weight"], args.norm_eps)
    logits = linear(h, weights["output.weight"])  # [seq, vocab_size / world_size]: this rank's slice of the vocabulary
    parts = [torch.empty_like(logits) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, logits)  # the list form: gloo has no all_gather_into_tensor
    return torch.cat(parts, dim=-1).float()  # [seq, vocab_size]


def parallel_generate(prompt_ids: list[int], weights: dict[str, torch.Tensor], args: ModelArgs, max_new_tokens: int,
                      stop_tokens=()) -> Iterator[tuple[int, torch.Tensor]]:
    """The generate of exercise 12 on one rank: a cache of this rank's K/V heads; every rank sees the same logits, so
    every rank picks the same token."""
    n_kv_heads = local_args(args, dist.get_world_size()).n_kv_heads
    dtype, device = weights["tok_embeddings.weight"].dtype, weights["tok_embeddings.weight"].device
    cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, n_kv_heads, args.head_dim, dtype, device=device)
    tokens = torch.tensor(prompt_ids, device=device)  # [prompt_len]
    start_pos = 0
    for _ in range(max_new_tokens):
        logits = parallel_forward(tokens, weights, args, cache, start_pos)[-1]  # [vocab_size]
        token = int(logits.argmax())
        if token in stop_tokens:
            return
        yield token, logits
        start_pos += tokens.shape[0]
        tokens = torch.tensor([token], device=device)  # [1]
