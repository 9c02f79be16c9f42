"""Exercise 4: RMSNorm.

Each layer of a deep network adds something to the hidden states, and left alone
their size drifts: some tokens grow large, others stay small, and the next layer's
matrices see inputs of wildly different scale. A normalization layer rescales every
token's vector to a standard size before it goes into a sublayer. Llama uses RMSNorm
65 times in the 8B model: twice in each of the 32 blocks (before attention and before
the feed-forward network) and once after the last block.

The math
--------
For one token's vector x of length dim:

    rms(x) = sqrt( mean_i(x_i^2) + eps )
    y_i    = x_i / rms(x) * w_i

mean over the dim entries of that one token, eps = norm_eps = 1e-5 (from params.json)
keeps a zero vector from dividing by zero, and w is a learned gain per channel
(layers.N.attention_norm.weight, layers.N.ffn_norm.weight, norm.weight; each [dim]).
After the division every token's vector has root-mean-square 1; the weight then lets
the model choose a scale per channel.

Shapes for the prompt in Llama 3 8B:

    x                   [17, 4096]   bfloat16
    x in float32        [17, 4096]   float32
    mean of squares     [17, 1]      float32  (over the last dim, kept for broadcasting)
    normalized          [17, 4096]   float32
    cast back           [17, 4096]   bfloat16
    times weight [4096] [17, 4096]   bfloat16

The function must work for any number of leading dimensions ([..., dim]): always
reduce over the last one.

Why RMSNorm and not LayerNorm
-----------------------------
LayerNorm, used by the original Transformer and GPT-2, subtracts the mean, divides by
the standard deviation, then applies a gain and a bias. RMSNorm (Zhang and Sennrich,
2019) keeps only the rescaling: no mean subtraction, no bias. Its authors found that
the rescaling is what stabilises training, and that dropping the centring costs
nothing in quality while saving a reduction over the vector. A consequence you can
test: rms_norm(c * x) equals rms_norm(x) for any c > 0 (up to eps). The kit's tests
check exactly that.

Why float32, and in which order
-------------------------------
bfloat16 has 8 bits of mantissa: about 3 significant decimal digits. A sum of 4096
squares computed in that precision is rough, and the reciprocal square root of it
rougher. So Meta's code does the normalization in float32 and casts the result back
to the input dtype before multiplying by the weight:

    1. upcast x to float32
    2. normalize in float32
    3. cast back to x's dtype
    4. multiply by the weight (bfloat16 times bfloat16)

Multiplying by the weight while still in float32 and casting at the end looks
harmless but rounds differently, and changes the last bits of many values; doing the
whole thing in bfloat16 is worse, though often by less than the grader can tell from
an honest rounding difference. What the grader does recognise is leaving out eps: one
of its inputs has tiny values, where eps decides the result. Returning float32 is also
wrong: every later layer would then silently run in float32.

Useful torch: Tensor.float(), Tensor.pow, Tensor.mean(dim, keepdim=True),
torch.rsqrt (1/sqrt in one step), Tensor.type_as or Tensor.to(dtype).

Pitfalls
--------
- The mean over the wrong dimension (over tokens instead of channels), or a sum
  instead of a mean.
- eps outside the square root, or forgotten.
- Modifying x in place (x.pow_, x *= ...): x is the caller's tensor, and in the next
  exercises it is the residual stream you still need.
- keepdim=False, after which [17] does not broadcast against [17, 4096].

Run the tests: pytest exercises/ -k ex04
"""

import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x / rms(x) in float32, cast back to x's dtype, then scaled by weight.

    Args:
        x: [..., dim], any float dtype ([17, 4096] bfloat16 in the 8B model).
        weight: [dim], the learned gain, in the weights' dtype.
        eps: norm_eps, 1e-5 for every Llama 3 model.

    Returns:
        [..., dim]. When x and weight share a dtype (they do in the model), that dtype;
        otherwise whatever PyTorch's type promotion of the last product gives.

    Hints:
        - The root mean square is over the last dimension only, one value per token.
        - Upcast first, cast back before the weight: the chapter's four steps.
    """
    raise NotImplementedError("not started: implement rms_norm in exercises/ex04_rms_norm.py (exercise 4)")
