"""Exercise 10: Transformer block.

Llama 3 8B is 32 copies of one block, each with its own weights. You have written
all the parts: RMSNorm (exercise 4), the attention sublayer (exercise 8) and the
feed-forward sublayer (exercise 9). A block connects them with two residual
connections, in the pre-norm arrangement:

    h   = x + self_attention( rms_norm(x, attention_norm) )
    out = h + feed_forward( rms_norm(h, ffn_norm) )

Shapes for Llama 3 8B on the prompt: everything stays [17, 4096].

    x                              [17, 4096]  the residual stream coming in
    rms_norm(x, attention_norm)    [17, 4096]
    self_attention(...)            [17, 4096]
    h = x + that                   [17, 4096]
    rms_norm(h, ffn_norm)          [17, 4096]
    feed_forward(...)              [17, 4096]
    out = h + that                 [17, 4096]  the residual stream going out

The residual stream
-------------------
Read the two lines as: the hidden states x flow straight through the block, and each
sublayer reads a normalized copy of them and adds its contribution back. Nothing ever
overwrites the stream; the 32 blocks only add to it. The stream is never normalized
itself: only the copies handed to the sublayers are. That is why the residual must be
added to x (and to h), not to the normalized tensor: h = normed + attention(normed)
throws away the stream's scale and mixes the norm's weight into every later layer. It
is a common slip, and the grader names it ("residual added to the normed input").

Why pre-norm
------------
The original Transformer normalized after adding: x = norm(x + sublayer(x)). Then
the path from the first layer to the last passes through every norm, gradients
shrink or grow on the way, and deep stacks need careful learning-rate warm-up to
train at all. With the norm moved in front of each sublayer (GPT-2 did this, and every
Llama since), the residual stream is an identity path from the embedding to the
output: gradients reach early layers undisturbed, and 32, 80 or 126 layers train
stably. The price is that the stream's magnitude grows from layer to layer, which is
why one last RMSNorm comes after the final block (exercise 11).

The weights of block N, from Meta's state dict:

    layers.N.attention_norm.weight    [4096]
    layers.N.attention.wq/wk/wv/wo.weight   (read by your self_attention)
    layers.N.ffn_norm.weight          [4096]
    layers.N.feed_forward.w1.weight   [14336, 4096]
    layers.N.feed_forward.w2.weight   [4096, 14336]
    layers.N.feed_forward.w3.weight   [14336, 4096]

That is 218,112,000 parameters per block for 8B. You will call your rms_norm (with
args.norm_eps), self_attention and feed_forward here.

cache and start_pos
-------------------
Pass them through to self_attention unchanged; the block itself does nothing with
them. Most of this exercise's tests pass no cache; the "cached" ones run the block
through a cache as exercise 12 will, and say so if the cache never received the
chunk's keys. freqs_cis and mask are passed through the same way: they are computed
once per forward pass (exercise 11) and shared by every block.

Pitfalls
--------
- The residual added to the normed input instead of to x (see above).
- The second norm applied to x instead of h, or the second residual forgotten.
- The same norm weight used twice: there are two, attention_norm and ffn_norm.
- Modifying x in place (x += ...): the caller may still need it. Write new tensors.

Run the tests: pytest exercises/ -k ex10
"""

import torch

# Your functions from earlier exercises: call them here.
from .ex02_checkpoint import ModelArgs
from .ex04_rms_norm import rms_norm
from .ex08_multi_head_attention import self_attention
from .ex09_feed_forward import feed_forward


def transformer_block(
    x: torch.Tensor,
    weights: dict[str, torch.Tensor],
    layer_id: int,
    args: ModelArgs,
    freqs_cis: torch.Tensor,
    mask: torch.Tensor | None,
    cache=None,
    start_pos: int = 0,
) -> torch.Tensor:
    """h = x + attention(norm(x)); out = h + feed_forward(norm(h)).

    Args:
        x: [seq, dim], the residual stream ([17, 4096]).
        weights: Meta's state dict.
        layer_id: which block, 0 .. n_layers - 1.
        args: the ModelArgs (norm_eps, and what self_attention needs).
        freqs_cis: [seq, head_dim // 2] complex64, for x's positions.
        mask: [seq, kv_len] or None.
        cache: None, or the KVCache of exercise 12; pass it on.
        start_pos: position of x's first token; pass it on.

    Returns:
        [seq, dim] ([17, 4096]) in x's dtype: the residual stream after this block.

    Hints:
        - Two lines of math, four function calls.
        - Each residual adds to the stream (x, then h), never to a normalized tensor.
    """
    raise NotImplementedError("not started: implement transformer_block in "
                              "exercises/ex10_transformer_block.py (exercise 10)")
