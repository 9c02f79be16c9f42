"""Exercise 8: Grouped-query multi-head attention.

You now have every piece of attention: projections into heads (exercise 5), RoPE
(exercise 6) and attention for one head that broadcasts over leading dimensions
(exercise 7). This exercise assembles them into the attention sublayer of one
transformer block, with the twist that makes Llama 3 cheap to run: grouped-query
attention (GQA; Ainslie et al., 2023).

Grouped-query attention
-----------------------
Llama 3 8B has 32 query heads but only 8 key/value heads. The query heads form 8
groups of n_rep = 32 / 8 = 4 consecutive heads, and each group shares one K/V head:

    query heads  0  1  2  3 | 4  5  6  7 | ... | 28 29 30 31
    K/V head          0     |     1      | ... |      7

Query head h reads K/V head h // n_rep. To use exercise 7's attention unchanged, copy
each K/V head n_rep times in place order, so that K/V heads line up with query heads:

    k [17, 8, 128]  ->  [17, 32, 128]:  kv0 kv0 kv0 kv0 kv1 kv1 kv1 kv1 ...

That is torch.repeat_interleave along the head dimension. Tensor.repeat (or
torch.cat of copies) tiles the whole block instead, kv0 kv1 ... kv7 kv0 kv1 ..., which
pairs query head 1 with K/V head 1: the shapes are right, the numbers are wrong, and
the grader recognises it as K/V heads "tiled (0,1,0,1) instead of repeated in place (0,0,1,1)".

Why share K/V heads at all? Memory. When generating text, the keys and values of all
earlier tokens are kept in the KV cache (exercise 12) and read again for every new
token. Per token and layer the cache holds 2 x n_kv_heads x head_dim numbers:

    8 K/V heads (GQA):        2 x 8 x 128  = 2048 numbers = 4 KiB in bfloat16
    32 K/V heads (plain MHA): 2 x 32 x 128 = 8192 numbers = 16 KiB

Over 32 layers and an 8192-token context that is 1 GiB instead of 4 GiB, and, since
decoding is limited by how fast memory can be read, a quarter of the traffic. The
quality stays close to full multi-head attention. wk and wv shrink by 4 too.

The whole sublayer, with shapes
-------------------------------
For layer layer_id of Llama 3 8B on the 17-token prompt (x is already normalized):

    x                                   [17, 4096]
    project_qkv (ex05)                  q [17, 32, 128], k [17, 8, 128], v [17, 8, 128]
    apply_rope (ex06) to q and k        same shapes (v is not rotated)
    (cache.update, exercise 12)         k, v [start_pos + 17, 8, 128]
    repeat_kv, n_rep = 4                k, v [17, 32, 128]
    heads first: transpose(0, 1)        q [32, 17, 128], k, v [32, 17, 128]
    attention (ex07), all heads at once scores [32, 17, 17] -> out [32, 17, 128]
    back: transpose(0, 1)               [17, 32, 128]
    concatenate heads: reshape          [17, 4096]   (head h in columns h*128 ..)
    linear with wo (ex05)               wo [4096, 4096] -> [17, 4096]

The output projection wo mixes the 32 heads' results back into one vector per token.
The weights come from Meta's state dict under these names (N = layer_id):

    layers.N.attention.wq.weight   layers.N.attention.wk.weight
    layers.N.attention.wv.weight   layers.N.attention.wo.weight

You will call your project_qkv, apply_rope, attention and linear here; `args` is the
ModelArgs of exercise 2 (n_heads, n_kv_heads), freqs_cis has already been sliced to
the positions of x ([seq, head_dim // 2]), and mask is [seq, kv_len] or None.

The cache argument
------------------
self_attention takes cache and start_pos because exercise 12 needs them. When cache
is None, k and v are just this chunk's keys and values. When a cache is given, one
call is all it takes: cache.update(layer_id, start_pos, k, v) stores this chunk's keys
and values at positions start_pos .. start_pos + seq - 1 of this layer and returns the
keys and values of every position so far, each [start_pos + seq, n_kv_heads,
head_dim]; use those as k and v from then on. Place it after RoPE (cached keys are
already rotated) and before repeat_kv (the cache keeps only the 8 K/V heads).

Most of this exercise's tests pass no cache. The ones named "cached" do, the way
exercise 12 will: a prefill, then decode steps of one token, or a chunk of several
tokens after the cached ones, all through one cache. They tell you if the cache was
never updated, got keys after repeat_kv, or was given another start_pos. You may
write this part now or come back to it in exercise 12; until then those tests fail.

Pitfalls
--------
- repeat instead of repeat_interleave (see above).
- A Python loop over heads: 32 small products instead of one batched call. Exercise
  7's attention already handles the head dimension; give it all heads at once.
- view after transpose fails on a non-contiguous tensor: reshape copies when needed.
- Assuming kv_len == seq: with a cache, q has seq rows and k, v have more.
- Rotating v, or rotating after the cache update.

Run the tests: pytest exercises/ -k ex08
"""

import torch

# Your functions from earlier exercises: call them here.
from .ex02_checkpoint import ModelArgs
from .ex05_qkv import linear, project_qkv
from .ex06_rope import apply_rope
from .ex07_attention import attention


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Repeat each kv head n_rep times in place order, so query head h reads kv head h // n_rep.

    Args:
        x: [kv_len, n_kv_heads, head_dim] ([17, 8, 128]).
        n_rep: query heads per K/V head (4 for 8B).

    Returns:
        [kv_len, n_kv_heads * n_rep, head_dim] ([17, 32, 128]); with n_rep = 1, x's
        values unchanged.

    Hints:
        - One call to torch.repeat_interleave, along the head dimension.
    """
    raise NotImplementedError("not started: implement repeat_kv in exercises/ex08_multi_head_attention.py (exercise 8)")


def grouped_query_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Attention for all query heads at once, K/V heads shared by groups; heads concatenated.

    Args:
        q: [seq, n_heads, head_dim] ([17, 32, 128]), already rotated.
        k: [kv_len, n_kv_heads, head_dim] ([17, 8, 128]), already rotated.
        v: [kv_len, n_kv_heads, head_dim].
        mask: [seq, kv_len], or None.

    Returns:
        [seq, n_heads * head_dim] ([17, 4096]) in q's dtype: the heads' outputs side
        by side, head h in columns h*head_dim .. (h+1)*head_dim - 1.

    Hints:
        - n_rep follows from the number of heads in q and in k.
        - Put the head dimension first for attention and back afterwards; no loop.
        - Tensor.reshape merges the last two dimensions.
    """
    raise NotImplementedError("not started: implement grouped_query_attention in "
                              "exercises/ex08_multi_head_attention.py (exercise 8)")


def self_attention(
    x: torch.Tensor,
    weights: dict[str, torch.Tensor],
    layer_id: int,
    args: ModelArgs,
    freqs_cis: torch.Tensor,
    mask: torch.Tensor | None,
    cache=None,
    start_pos: int = 0,
) -> torch.Tensor:
    """Layer layer_id's attention: project, rotate q and k, attend (through the cache if given), wo.

    Args:
        x: [seq, dim], the normalized hidden states ([17, 4096]).
        weights: Meta's state dict; read layers.{layer_id}.attention.w{q,k,v,o}.weight.
        layer_id: which layer, 0 .. n_layers - 1.
        args: the ModelArgs (n_heads, n_kv_heads).
        freqs_cis: [seq, head_dim // 2] complex64, the rows for x's positions.
        mask: [seq, kv_len] or None.
        cache: None, or the KVCache of exercise 12.
        start_pos: position of x's first token in the whole sequence (0 without a cache).

    Returns:
        [seq, dim] ([17, 4096]) in x's dtype.

    Hints:
        - Build the key prefix from layer_id once, then look up the four matrices.
        - project_qkv, apply_rope twice, the cache if there is one,
          grouped_query_attention, then linear with wo.
    """
    raise NotImplementedError("not started: implement self_attention in "
                              "exercises/ex08_multi_head_attention.py (exercise 8)")
