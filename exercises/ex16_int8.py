"""Exercise 16: int8 weights.

Your Llama decodes one token at a time, and for every token it reads every weight
matrix once: 2.47 GB for Llama 3.2 1B, 16 GB for 8B. The arithmetic per weight is one
multiply-add; reading the weight from memory takes longer than that. Decoding is
memory-bound: tokens per second is about memory bandwidth divided by the bytes of
weights read per token (`llama3-grader bench` prints this "bandwidth bound" next to
what you get). Store each weight in one byte instead of two and there are half the
bytes to read.

Measured on the kit's CPU (one thread, matrices larger than the caches):

    bf16 F.linear                 reads  6.2 GB/s of bf16   = 3.1 G weights/s
    float32 F.linear              reads 13.8 GB/s of float32 = 3.5 G weights/s
    torch._weight_int8pack_mm     reads  6.0 GB/s of int8   = 6.0 G weights/s

so int8 weights make the matrix products of a decode step about twice as fast.

Symmetric, per output channel
-----------------------------
A weight matrix W [out, in] has one row per output. Give each row i its own scale:

    scale[i] = max_j |W[i, j]| / 127                   [out]   float32
    q[i, j]  = round(W[i, j] / scale[i])                [out, in] int8, in -127..127
    W[i, j] ~ q[i, j] * scale[i]

The row's largest weight becomes +-127, zero stays exactly zero, and every weight is
off by at most half a step: |q * scale - W| <= scale / 2. Symmetric means no zero point:
-W quantizes to -q, and -128 is never used. Per output channel ("per row") has two
reasons. A single outlier only coarsens its own row, not the whole matrix (trained
models have rows whose largest weight is many times the others'). And the scale comes
out of the matrix product for free:

    y[t, i] = sum_j x[t, j] W[i, j] ~ scale[i] * sum_j x[t, j] q[i, j]

one multiplication per output, after the sum. For Llama 3.2 1B's wq [2048, 2048]:

    weight   [2048, 2048] bfloat16   8 MiB
    q        [2048, 2048] int8       4 MiB
    scale    [2048]       float32    8 KiB

A row of zeros has max 0, and 0 / 0 is NaN: give such a row a small positive scale
(any will do: its q is 0 whatever it is). Do the arithmetic in float32 (the weight
may be bf16), round to the nearest integer with torch.round, and only then convert
with .to(torch.int8), which on its own cuts toward zero.

The int8 matrix product
-----------------------
torch._weight_int8pack_mm(x, q, scale) computes x @ (q * scale[:, None]).T without
ever building the dequantized matrix: it reads each int8 weight once, converts it in
registers, and scales each output. Its contract:

    x      [seq, in]   bfloat16 (or float16, float32), contiguous
    q      [out, in]   int8, contiguous
    scale  [out]       the same dtype as x
    ->     [seq, out]  x's dtype

x and q must also start on a 64-byte boundary (torch 2.13's CPU kernel crashes the whole
process otherwise). Every tensor torch allocates does; a view into the middle of another
one may not, and x.clone() fixes that.

It is built for decoding, one row of x at a time: there, with bf16 activations, it is
2 to 3 times as fast as bf16 F.linear. With many rows (a prompt) bf16 F.linear wins
(17 rows through a [8192, 4096] matrix, measured here: 53 ms against 20 ms), and with
float32 activations the kernel is slow at any size, so the int8 model runs in
bfloat16. (The tests run it in float32 on the tiny models, where speed does not
matter, for a tight comparison, and in bfloat16 on one token: through several tokens,
bf16 attention rounds correct programs further apart than any useful bound.) Writing
F.linear(x, q.to(x.dtype)) * scale.to(x.dtype) is correct too, and so is the product
with the dequantized matrix, in x's dtype or in float32 then cast back to x's dtype;
but each writes a converted copy of the matrix on every call, which is slower than bf16.

The reference calls torch._weight_int8pack_mm on the CPU, the device it was measured
on here. On every other device it takes that dequantized product, F.linear(x,
q.to(x.dtype)) * scale.to(x.dtype): the same numbers within rounding, without the
saving in bytes. Choose by x.device.type, as the reference does.

Which weights
-------------
Every matrix a token is multiplied by: the seven of each layer (wq, wk, wv, wo, w1,
w2, w3) and output.weight, 93% of the 8B model's bytes. Not the norms (vectors: a few
KB). Not tok_embeddings.weight: the embedding is a lookup that reads one row per token,
so a smaller table saves memory but no time, and since the weights are memory-mapped
only the rows actually looked up are ever read into memory. (In Llama 3.2, output.weight
is the same tensor as tok_embeddings.weight: the output projection is quantized, and
the lookup keeps reading the bf16 table.)

The kit quantizes a checkpoint with your quantize and is_quantized (grader/formats/int8.py):
tensor by tensor and a few thousand rows at a time, straight from the memory-mapped
file, so that there is never a bf16 or float32 copy of the model. Per-row scales make
that possible: quantizing rows 0..4095 alone gives the same q and scale as quantizing
the whole matrix. The int8 1B model then needs about half the memory of the bf16 one.

The forward pass
----------------
forward is exercise 11's forward with every projection through int8_linear: the
embedding lookup, then per layer RMSNorm, q, k, v = int8_linear of the normed input
(viewed as heads), RoPE, the cache, grouped_query_attention (exercise 8), wo, the
residual; RMSNorm, SwiGLU with w1, w3 and w2, the residual; the final norm and the
output projection, in float32 at the end. Your functions from exercises 3 to 8 are
imported below. The activations stay in the dtype of the embedding table.

How much is lost? On the trained SmolLM2-135M (the kit measures it in
tests/test_trained_int8.py over 24 prompts), the int8 model's top-1 prediction agrees
with the bf16 model's at 97% of positions (2044 of 2102), and where they differ, bf16's
own first two were nearly tied (a median margin of 0.125). `llama3-grader bench --int8`
measures the speed and memory on a checkpoint: on the 1B shape, int8 decodes 1.78x as
fast as bf16 in 0.63x the memory (docs/int8.md).

Pitfalls
--------
- One scale per column (amax over dim 0) instead of per row: the shapes may even fit.
- Forgetting the 127: the scale is max / 127, not max.
- .to(torch.int8) without torch.round first truncates toward zero.
- Scales in bf16: keep them float32; convert to x's dtype only for the kernel (the
  failure says so: "scale: dtype bfloat16, expected float32").
- Quantizing the embedding table: no speed gained, and every lookup now needs a scale.

Run the tests: pytest exercises/ -k ex16
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

# Your functions from exercises 3 to 8: call them here.
from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex06_rope import apply_rope, precompute_freqs_cis
from .ex07_attention import causal_mask
from .ex08_multi_head_attention import grouped_query_attention


class Int8Weight(NamedTuple):
    """A weight matrix as int8 values and one float32 scale per output row: weight ~ q * scale[:, None].

    Given: w = Int8Weight(q, scale), then w.q and w.scale (or q, scale = w).
    """

    q: torch.Tensor  # [out, in] int8
    scale: torch.Tensor  # [out] float32


def quantize(weight: torch.Tensor) -> Int8Weight:
    """Symmetric per-output-channel int8: each row's largest magnitude maps to 127.

    Args:
        weight: [out, in] in any floating dtype (bf16 from the checkpoint).

    Returns:
        Int8Weight(q, scale): q [out, in] int8 in -127..127, scale [out] float32, every
        scale positive, so that |q * scale[:, None] - weight| <= scale[:, None] / 2.

    Hints:
        - weight.float().abs().amax(dim=1) is each row's largest magnitude.
        - clamp_min keeps an all-zero row's scale positive.
        - torch.round, then .clamp(-127, 127), then .to(torch.int8).
    """
    raise NotImplementedError("not started: implement quantize in exercises/ex16_int8.py (exercise 16)")


def dequantize(w: Int8Weight) -> torch.Tensor:
    """The float32 matrix the int8 values stand for.

    Args:
        w: Int8Weight(q [out, in] int8, scale [out] float32).

    Returns:
        [out, in] float32: q * scale, each row times its own scale.

    Hints:
        - scale[:, None] is [out, 1]: it broadcasts along each row.
    """
    raise NotImplementedError("not started: implement dequantize in exercises/ex16_int8.py (exercise 16)")


def int8_linear(x: torch.Tensor, w: Int8Weight) -> torch.Tensor:
    """x @ dequantize(w).T, computed on the int8 values.

    Args:
        x: [seq, in] activations, bf16 or float32.
        w: Int8Weight(q [out, in], scale [out]).

    Returns:
        [seq, out] in x's dtype.

    Hints:
        - torch._weight_int8pack_mm(x, w.q, w.scale.to(x.dtype)); x must be contiguous.
        - Off the CPU: F.linear(x, w.q.to(x.dtype)) * w.scale.to(x.dtype).
    """
    raise NotImplementedError("not started: implement int8_linear in exercises/ex16_int8.py (exercise 16)")


def is_quantized(name: str) -> bool:
    """Whether the weight of this name is stored in int8.

    Args:
        name: a name of Meta's checkpoint, e.g. "layers.0.attention.wq.weight".

    Returns:
        True for every matrix a token is multiplied by (the seven of each layer and
        output.weight); False for tok_embeddings.weight and the norms.

    Hints:
        - Every name ends with ".weight"; the norms' names end with "norm.weight".
    """
    raise NotImplementedError("not started: implement is_quantized in exercises/ex16_int8.py (exercise 16)")


def forward(tokens: torch.Tensor, weights: dict, args: ModelArgs, cache=None, start_pos: int = 0) -> torch.Tensor:
    """The forward of exercise 11 with every projection through int8_linear.

    Args:
        tokens: [seq] token ids at positions start_pos .. start_pos + seq - 1.
        weights: Meta's names; Int8Weight for every name is_quantized accepts, tensors
            for the embedding table and the norms.
        args: the ModelArgs.
        cache: a KVCache (exercise 12) or None; update it between RoPE and attention.
        start_pos: the position of tokens[0].

    Returns:
        [seq, vocab_size] float32 logits.

    Hints:
        - q = int8_linear(x, weights[p + "attention.wq.weight"]).view(seq, n_heads, head_dim).
        - grouped_query_attention(q, k, v, mask) gives [seq, n_heads * head_dim] for wo.
        - SwiGLU: int8_linear(F.silu(int8_linear(x, w1)) * int8_linear(x, w3), w2).
    """
    raise NotImplementedError("not started: implement forward in exercises/ex16_int8.py (exercise 16)")
