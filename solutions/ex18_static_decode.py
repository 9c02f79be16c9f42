"""Exercise 18, reference: decoding with static shapes, one compiled step per token and no host sync."""

from collections.abc import Callable

import torch

from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex05_qkv import linear, project_qkv
from .ex06_rope import precompute_freqs_cis
from .ex08_multi_head_attention import grouped_query_attention
from .ex09_feed_forward import feed_forward


class StaticCache:
    """Keys (after RoPE) and values of every layer in buffers of one fixed shape, written at a tensor of positions."""

    def __init__(self, n_layers: int, max_seq_len: int, n_kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device=None):
        """Zeros on device (None: the default device), at addresses that never change."""
        shape = (max_seq_len, n_kv_heads, head_dim)  # each list: n_layers x [max_seq_len, n_kv_heads, head_dim]
        self.cache_k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.cache_v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        for buffer in self.cache_k + self.cache_v:
            torch._dynamo.mark_static_address(buffer)  # a CUDA graph may read and write them where they are

    def update(
        self, layer_id: int, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v at the positions input_pos holds; return the layer's whole buffers."""
        # input_pos [seq] int64, k and v [seq, n_kv_heads, head_dim]
        self.cache_k[layer_id].index_copy_(0, input_pos, k)
        self.cache_v[layer_id].index_copy_(0, input_pos, v)
        return self.cache_k[layer_id], self.cache_v[layer_id]  # [max_seq_len, n_kv_heads, head_dim] x 2


def rope_tables(
    head_dim: int, max_seq_len: int, theta: float, scale_factor: float | None = None, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every position's angles, computed once for the whole cache."""
    freqs_cis = precompute_freqs_cis(head_dim, max_seq_len, theta, scale_factor, device=device)  # complex64
    return freqs_cis.real.contiguous(), freqs_cis.imag.contiguous()  # [max_seq_len, head_dim // 2] float32 x 2


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each adjacent pair (2k, 2k+1) of every head by its position's angle, in real arithmetic."""
    # x [seq, n_heads, head_dim], cos and sin [seq, head_dim // 2]
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)  # [seq, n_heads, head_dim // 2, 2]
    even, odd = pairs[..., 0], pairs[..., 1]  # [seq, n_heads, head_dim // 2] x 2
    cos, sin = cos[:, None, :], sin[:, None, :]  # [seq, 1, head_dim // 2] x 2
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)  # [seq, n_heads, head_dim // 2, 2]
    return rotated.flatten(-2).type_as(x)  # [seq, n_heads, head_dim]


def attention_mask(input_pos: torch.Tensor, max_seq_len: int) -> torch.Tensor:
    """0 where the query at input_pos[i] may look (cache positions up to its own), -inf elsewhere."""
    positions = torch.arange(max_seq_len, device=input_pos.device)  # [max_seq_len]
    visible = positions[None, :] <= input_pos[:, None]  # [seq, max_seq_len]
    return torch.zeros(visible.shape, device=input_pos.device).masked_fill(~visible, float("-inf"))


def forward(
    tokens: torch.Tensor, input_pos: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs,
    cache: StaticCache, rope: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """Logits in float32 for tokens at positions input_pos, attending over the whole static cache."""
    cos, sin = rope  # [max_seq_len, head_dim // 2] x 2
    mask = attention_mask(input_pos, cos.shape[0])  # [seq, max_seq_len]
    cos, sin = cos[input_pos], sin[input_pos]  # [seq, head_dim // 2] x 2
    h = embed(tokens, weights["tok_embeddings.weight"])  # [seq, dim]
    for layer_id in range(args.n_layers):
        p = f"layers.{layer_id}."
        x = rms_norm(h, weights[p + "attention_norm.weight"], args.norm_eps)
        q, k, v = project_qkv(x, weights[p + "attention.wq.weight"], weights[p + "attention.wk.weight"],
                              weights[p + "attention.wv.weight"], args.n_heads, args.n_kv_heads)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        keys, values = cache.update(layer_id, input_pos, k, v)  # [max_seq_len, n_kv_heads, head_dim] x 2
        h = h + linear(grouped_query_attention(q, keys, values, mask), weights[p + "attention.wo.weight"])
        x = rms_norm(h, weights[p + "ffn_norm.weight"], args.norm_eps)
        h = h + feed_forward(x, weights[p + "feed_forward.w1.weight"], weights[p + "feed_forward.w2.weight"],
                             weights[p + "feed_forward.w3.weight"])  # [seq, dim]
    h = rms_norm(h, weights["norm.weight"], args.norm_eps)
    return linear(h, weights["output.weight"]).float()  # [seq, vocab_size]


def decode_step(
    token: torch.Tensor, input_pos: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs, cache: StaticCache,
    rope: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token through the model at position input_pos; the greedy next token and the logits, on the device."""
    # token [1] int64, input_pos [1] int64
    logits = forward(token, input_pos, weights, args, cache, rope)[-1]  # [vocab_size] float32
    return logits.argmax(-1, keepdim=True), logits  # [1] int64, [vocab_size]


def compile_step(step: Callable, device) -> Callable:
    """step compiled whole: with CUDA graphs on a GPU (mode "reduce-overhead"), in the default mode elsewhere."""
    if torch.device(device).type == "cuda":
        return torch.compile(step, mode="reduce-overhead", fullgraph=True)
    return torch.compile(step, fullgraph=True)


def generate(
    prompt_ids: list[int], weights: dict[str, torch.Tensor], args: ModelArgs, max_new_tokens: int, stop_tokens=(),
    max_seq_len: int | None = None
) -> list[tuple[int, torch.Tensor]]:
    """Prefill, then max_new_tokens - 1 compiled decode steps with every token kept on the device; one host sync at
    the end. The (token, logits) pairs of exercise 12's generate, up to the first stop token."""
    if max_new_tokens < 1:
        return []
    embeddings = weights["tok_embeddings.weight"]
    device, dtype = embeddings.device, embeddings.dtype
    max_seq_len = max_seq_len or len(prompt_ids) + max_new_tokens
    cache = StaticCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype, device=device)
    rope = rope_tables(args.head_dim, max_seq_len, args.rope_theta, args.rope_scale_factor, device=device)
    for tensor in [*weights.values(), *rope]:
        torch._dynamo.mark_static_address(tensor)  # read in place by a CUDA graph, never copied into it
    step = compile_step(decode_step, device)
    input_pos = torch.arange(len(prompt_ids), device=device)  # [prompt_len]
    logits = forward(torch.tensor(prompt_ids, device=device), input_pos, weights, args, cache, rope)[-1]  # prefill
    token = logits.argmax(-1, keepdim=True)  # [1]
    tokens, all_logits = [token], [logits]
    input_pos = input_pos[-1:] + 1  # [1]: where the token just chosen goes
    for _ in range(max_new_tokens - 1):
        token, logits = step(token, input_pos, weights, args, cache, rope)
        token, logits = token.clone(), logits.clone()  # a CUDA graph's next replay writes over its outputs
        tokens.append(token)
        all_logits.append(logits)
        input_pos += 1
    out = []
    for token, logits in zip(torch.cat(tokens).tolist(), all_logits):  # the one host sync
        if token in stop_tokens:
            break
        out.append((token, logits))
    return out
