"""Exercise 12: KV cache and generation.

generate_uncached (exercise 11) works, but every new token re-runs the model on the
entire sequence. Almost all of that work repeats the previous step. This exercise keeps
what can be kept, the keys and values of every layer, and then feeds the model one
token at a time. At the end your own code, on Meta-Llama-3-8B, completes "the answer
to the ultimate question of life, the universe, and everything is " with "42".

What can be cached, and why only K and V
----------------------------------------
Because of the causal mask, position j's hidden states in every layer depend only on
tokens 0..j. Appending a token changes nothing about the earlier positions: their keys
and values, in every layer, are final the moment they are computed. The new token
needs three things in each layer: its own query, and the keys and values of every
position so far. The queries of earlier positions are useless to it: a query is only
ever used to compute its own position's output, and those outputs were computed in
earlier steps. So the cache stores K and V, never Q.

Two details follow from exercise 8: keys are cached after RoPE (their rotation
depends only on their own position, so it is final too), and before repeat_kv (the
cache holds the 8 K/V heads, not 32 copies: that is GQA's memory saving).

The cache
---------
Per layer, one tensor for keys and one for values, allocated once at full size and
filled in as generation proceeds:

    cache_k[layer], cache_v[layer]   [max_seq_len, n_kv_heads, head_dim]
                                     = [max_seq_len, 8, 128] bfloat16 for 8B

Preallocating avoids concatenating a growing tensor at every step (which copies
everything each time). For 8B each position costs 32 layers x 2 x 8 x 128 x 2 bytes =
128 KiB, so a full 8192-token context takes 1 GiB.

update(layer_id, start_pos, k, v) writes the new rows k, v [seq, n_kv_heads, head_dim]
at positions start_pos .. start_pos + seq - 1 of that layer and returns the cached keys
and values of positions 0 .. start_pos + seq - 1: [start_pos + seq, n_kv_heads,
head_dim] each. Your self_attention (exercise 8) calls it between RoPE and repeat_kv;
if you skipped that line in exercise 8, now is the time to add it.

Prefill, then decode
--------------------
Generation calls your forward (exercise 11) with the cache:

    prefill   forward(prompt [17], cache, start_pos=0)
              every layer writes positions 0..16; the mask is [17, 17]
              logits [17, 128256]; the last row's argmax is 2983 ("42")
    decode    forward([2983], cache, start_pos=17)
              seq = 1, mask None, freqs_cis row 17; every layer writes position 17
              and reads 18: q [1, 32, 128], k, v [18, 8, 128] -> scores [32, 1, 18]
              logits [1, 128256]
    decode    forward([next], cache, start_pos=18) ... and so on

start_pos advances by the number of tokens just fed: 17 after the prefill, then 1 per
step. A decoding step now does a constant amount of matrix work plus attention over
the cached positions, instead of re-running everything. What remains is dominated by
reading the weights once per token (16 GB for 8B), so decoding speed is set by memory
bandwidth.

Greedy decoding and stop tokens
-------------------------------
Greedy decoding always takes the argmax: deterministic, and what reproduces "42".
(Sampling with temperature, top-k and top-p is one of the kit's extras.) Generation
ends after max_new_tokens tokens, or as soon as the chosen token is a stop token,
which is then not yielded: EOS <|end_of_text|> (128001) ends a document for the base
models, EOT <|eot_id|> (128009) ends a chat turn, EOM <|eom_id|> (128008) ends a tool
call message in Llama 3.1 and later (STOP_TOKENS in exercise 1).

generate yields the same (token_id, logits) pairs as generate_uncached, and the kit's
tests hold it to that: cached decoding must equal recomputation from scratch (within
rounding, because the matrix products have different shapes). They also watch your
calls to forward: one cache throughout, and every token fed once, at start_pos = the
number of tokens already cached. Recomputing the whole sequence gives the right tokens
too, but it is not this chapter.

Where two candidate tokens have almost the same logit, rounding alone may pick either.
The tests compare tokens up to the first step where the reference's own top two are
that close, and say so when your tokens part from it at a step where they are not.

Where tensors live
------------------
KVCache takes one more argument, device=None, and makes its tensors there:
torch.zeros(shape, dtype=dtype, device=device), None being the default device.
generate makes its cache, and the tokens it feeds, where the weights are: device =
weights["tok_embeddings.weight"].device. (The grader makes caches with the first
five arguments, within torch.device(...), so they land on the chosen device either
way.) A cache on the CPU with the model on a GPU fails in the first attention, and
the grader names it.

Pitfalls
--------
- One tensor shared by all layers: a list built by multiplying a one-element list
  holds n_layers references to the same tensor. Allocate each one separately.
- Returning the whole preallocated buffer from update: the rows not yet written are
  zeros, and attention would give them weight. Return only rows up to the end.
- Feeding the whole sequence again at each step while also using the cache.
- Advancing start_pos by 1 after the prefill instead of by the prompt length.
- A cache in float32 while the model runs in bfloat16: take the dtype from the weights.
- Caching K before RoPE, or after repeat_kv.

Run the tests: pytest exercises/ -k ex12
"""

from collections.abc import Iterator

import torch

# Your function from exercise 11: call it here.
from .ex02_checkpoint import ModelArgs
from .ex11_forward import forward


class KVCache:
    """Keys (after RoPE) and values of every layer, preallocated for max_seq_len positions."""

    def __init__(self, n_layers: int, max_seq_len: int, n_kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device=None):
        """Allocate, for each of the n_layers layers, a key and a value tensor of zeros.

        Args:
            n_layers: number of layers (32 for 8B).
            max_seq_len: positions to make room for: prompt length plus new tokens.
            n_kv_heads: K/V heads (8), not query heads.
            head_dim: size of one head (128).
            dtype: the model's dtype (bfloat16 for a real checkpoint).
            device: where to make the tensors; None for the default device.

        Store them as two lists, self.cache_k and self.cache_v (the names the
        reference uses), each of n_layers tensors [max_seq_len, n_kv_heads, head_dim].

        Hints:
            - torch.zeros with a shape, a dtype and the device, once per layer and
              per list.
            - A list comprehension creates a new tensor on each iteration.
        """
        raise NotImplementedError("not started: implement KVCache.__init__ in "
                                  "exercises/ex12_generation.py (exercise 12)")

    def update(
        self, layer_id: int, start_pos: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v at positions start_pos.. and return everything cached so far for this layer.

        Args:
            layer_id: which layer's tensors.
            start_pos: position of the first new row.
            k: [seq, n_kv_heads, head_dim], this chunk's keys, already rotated.
            v: [seq, n_kv_heads, head_dim], this chunk's values.

        Returns:
            (keys, values), each [start_pos + seq, n_kv_heads, head_dim]: positions 0 up
            to the last one just written.

        Hints:
            - Slice assignment along the first dimension writes in place into the
              preallocated tensor.
            - Return slices (views) of the stored tensors, not the whole buffers.
        """
        raise NotImplementedError("not started: implement KVCache.update in exercises/ex12_generation.py (exercise 12)")


def generate(
    prompt_ids: list[int], weights: dict[str, torch.Tensor], args: ModelArgs, max_new_tokens: int, stop_tokens=()
) -> Iterator[tuple[int, torch.Tensor]]:
    """Prefill the prompt once, then feed one token at a time through the cache; yields (token, logits).

    Args:
        prompt_ids: the encoded prompt, with BOS (17 ids).
        weights: Meta's state dict.
        args: the ModelArgs (n_layers, n_kv_heads, head_dim).
        max_new_tokens: generate at most this many tokens.
        stop_tokens: ids that end generation; a stop token is not yielded.

    Yields:
        (token_id, logits): a Python int and the [vocab_size] float32 logits of the
        last position from which it was chosen; the same sequence generate_uncached
        yields. The first token for the prompt on the real 8B is 2983, "42".

    Hints:
        - Make one KVCache big enough for the prompt plus max_new_tokens, in the dtype
          and on the device of weights["tok_embeddings.weight"].
        - The first forward gets the whole prompt at start_pos 0; afterwards a tensor
          holding just the last chosen token.
        - Keep start_pos equal to the number of tokens already in the cache.
    """
    raise NotImplementedError("not started: implement generate in exercises/ex12_generation.py (exercise 12)")
