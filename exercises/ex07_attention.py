"""Exercise 7: Attention (one head).

This is the step where tokens talk to each other. Every token has a query, a key and
a value (exercise 5), rotated for its position (exercise 6). For one head, attention
computes, for every token, a weighted average of the values of the tokens it may see,
weighted by how well its query matches their keys.

The math
--------
    scores = q @ k^T / sqrt(head_dim)       how well query i matches key j
    scores = scores + mask                  -inf where j is in i's future
    probs  = softmax(scores, over j)        each row sums to 1
    out    = probs @ v                      weighted average of the value rows

Shapes for one head of Llama 3 8B on our 17-token prompt (head_dim = 128):

    q        [17, 128]
    k, v     [17, 128]
    scores   [17, 17]    row i: query i against all 17 keys
    mask     [17, 17]
    probs    [17, 17]    row i sums to 1
    out      [17, 128]

Your function must also accept any leading dimensions: q [..., seq, head_dim],
k and v [..., kv_len, head_dim], mask [seq, kv_len]. The matrix product @ broadcasts
over leading dimensions, so the very same code computes all 32 heads at once when
q is [32, 17, 128]; the scores are then [32, 17, 17] and the mask broadcasts over the
heads. Exercise 8 relies on this: it must not loop over heads in Python. Use
k.transpose(-2, -1) to swap the last two dimensions (k.T would reverse all of them).

Why divide by sqrt(head_dim)
----------------------------
If the 128 entries of q and k are roughly independent with variance 1, their dot
product has variance 128: typical scores of +-11. Softmax of numbers that far apart
is almost one-hot: one key takes everything and, in training, the gradients to all
others vanish. Dividing by sqrt(128) = 11.3 brings the scores back to variance 1. The
model was trained with this scale, so inference must use exactly it: not head_dim,
not sqrt(dim). Forgetting it makes attention far too sharp; the grader names it.

Why the causal mask
-------------------
Llama is trained to predict token i+1 from tokens 0..i, for every i of a text at
once. If position i could see position i+1, it would simply copy the answer. So each
query may look at its own position and earlier ones only. At inference the same rule
makes the prompt processed all at once give exactly what one-token-at-a-time would
give, which is what lets the KV cache of exercise 12 work.

The mask is added to the scores: 0 where looking is allowed, -inf where it is not.
exp(-inf) = 0, so a masked key gets probability exactly 0. With a KV cache, the seq
queries are the positions start_pos .. start_pos + seq - 1 while the keys are all
positions 0 .. start_pos + seq - 1; row i is position start_pos + i and may see key j
when j <= start_pos + i. The mask has shape [seq, start_pos + seq]:

    seq = 4, start_pos = 0:          seq = 2, start_pos = 3:
        0  -inf -inf -inf                0  0  0  0  -inf
        0   0   -inf -inf                0  0  0  0   0
        0   0    0   -inf
        0   0    0    0

The diagonal is always allowed, so no row is entirely -inf (that would give 0/0 =
NaN). When there is a single query (one new token, exercise 12) it may see every key,
and the mask is None: your attention must accept mask=None.

Softmax in float32
------------------
Meta computes the scores in the model's dtype, then runs softmax on them upcast to
float32 and casts the probabilities back to q's dtype before multiplying by v. Sums
of up to thousands of exponentials need more precision than bfloat16 has.

Useful torch: torch.full, Tensor.triu (diagonal=...), torch.zeros, torch.hstack or
torch.cat, torch.softmax(..., dim=-1), math.sqrt. PyTorch's own
scaled_dot_product_attention does all of this in one call; here you write it yourself.

Where tensors live
------------------
attention makes nothing new: its result is where q, k and v are. causal_mask has no
tensor to follow, only two integers, so it takes device=None and passes it to every
tensor it makes, torch.full(..., device=device) and torch.zeros(..., device=device);
None is the default device, the one the kit runs your code on (exercise 3). Your
forward (exercise 11) asks for the mask where its tokens are, causal_mask(seq,
start_pos, device=tokens.device), as Meta's model.py does.

Pitfalls
--------
- The diagonal off by one: masking the diagonal too hides each token from itself,
  and the first row becomes all -inf (NaN). The grader recognises this one.
- Softmax over the wrong dimension: it runs over the keys, the last dimension.
- Adding the mask after the softmax, or multiplying by it.
- Building the mask [seq, seq] when keys are cached: it is [seq, start_pos + seq].

Run the tests: pytest exercises/ -k ex07
"""

import math

import torch


def causal_mask(seqlen: int, start_pos: int = 0, device=None) -> torch.Tensor:
    """0 where a query may look, -inf where it would see the future; row i is position start_pos + i.

    Args:
        seqlen: number of queries (new tokens), seq.
        start_pos: number of earlier positions already in the cache.
        device: where to make the mask; None for the default device.

    Returns:
        [seqlen, start_pos + seqlen] float32: 0.0 at (i, j) when j <= start_pos + i,
        -inf elsewhere. [17, 17] for the prompt.

    Hints:
        - Build the [seqlen, seqlen] part first: -inf strictly above the diagonal.
        - The first start_pos columns (the cached past) are all zeros: put a block of
          zeros to the left.
        - Pass device=device to every tensor you make.
    """
    raise NotImplementedError("not started: implement causal_mask in exercises/ex07_attention.py (exercise 7)")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim) + mask) v, the softmax in float32.

    Args:
        q: [..., seq, head_dim].
        k: [..., kv_len, head_dim].
        v: [..., kv_len, head_dim].
        mask: [seq, kv_len] (0 or -inf), or None for no mask.

    Returns:
        [..., seq, head_dim] in q's dtype. One head of the prompt: [17, 128]; all heads
        at once: [32, 17, 128].

    Hints:
        - head_dim is q.shape[-1]; transpose k's last two dimensions.
        - Convert the mask to the scores' dtype before adding it.
        - Upcast the scores for the softmax, cast the probabilities back with type_as.
    """
    raise NotImplementedError("not started: implement attention in exercises/ex07_attention.py (exercise 7)")
