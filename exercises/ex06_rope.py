"""Exercise 6: RoPE, rotary position embeddings.

Attention compares a query with keys by dot products, and a dot product does not care
where a token stands: shuffle the prompt and every score stays the same. Something
must tell the model about order. Llama's answer is RoPE (Su et al., 2021): before
comparing, rotate each query and each key by an angle proportional to its position.

The rotation
------------
Take one head's vector, head_dim = 128 numbers, and group them into 64 adjacent pairs
(x0, x1), (x2, x3), ..., (x126, x127). Read pair i as a complex number

    z_i = x_{2i} + j * x_{2i+1}

and, for the token at position m, multiply it by a unit complex number:

    z_i'  = z_i * exp(j * m * f_i)                 a rotation by the angle m * f_i
    f_i   = theta ** (-2i / head_dim),  i = 0 .. head_dim/2 - 1,  theta = rope_theta

With theta = 500000: f_0 = 1 radian per token (a full turn every 6.3 tokens), f_1 =
0.8146, f_2 = 0.6636, ..., f_63 = 2.455e-6 (a full turn every 2.56 million tokens).
Fast pairs distinguish neighbours; slow pairs tell near from far.

Why it works: the dot product of a query rotated for position m with a key rotated
for position n is, pair by pair, Re(q_i * conj(k_i) * exp(j * (m - n) * f_i)). It
depends on the two positions only through their difference m - n: attention sees
relative positions, and a rotation never changes a vector's length. The kit's
property tests check both.

Why complex numbers: rotating a 2-D point by an angle is exactly multiplying by
exp(j * angle), and PyTorch can reinterpret a float tensor whose last dimension is 2
as a complex tensor without copying. So the whole rotation is one elementwise product:

    x [17, 32, 128] bfloat16 (the queries of our prompt in Llama 3 8B)
      -> float32, reshape [17, 32, 64, 2]
      -> torch.view_as_complex          [17, 32, 64] complex64
      -> times freqs_cis[:, None, :]    [17, 1, 64] complex64 (broadcast over heads)
      -> torch.view_as_real             [17, 32, 64, 2]
      -> flatten the last two dims      [17, 32, 128], cast back to bfloat16

and the keys the same way with 8 heads: [17, 8, 128]. V is never rotated.

freqs_cis is precomputed once: angles = outer(positions, f), a [end, 64] table, turned
into unit complex numbers with torch.polar(torch.ones_like(angles), angles). For the
prompt, freqs_cis has shape [17, 64]: row m rotates the token at position m.

Interleaved pairs, not halves
-----------------------------
Meta pairs adjacent elements (2i, 2i+1). Hugging Face's transformers pairs element i
with element i + 64 ("rotate_half"), and compensates by permuting the rows of wq and
wk when it converts Meta's checkpoint. Both are right for their own weights. This kit
uses Meta's layout (it converts Hugging Face checkpoints back), so the halves version
gives plausible-looking but wrong numbers here. The grader recognises that mistake.

Why theta = 500000, and why Llama 3.1 scales
--------------------------------------------
Llama 2 used theta = 10000. A larger base makes the slow frequencies slower, so that
even far-apart positions keep distinct angles: Llama 3 was trained on 8192-token
sequences. Llama 3.1 then extended the context to 131072 without retraining from
scratch, by rescaling the frequencies once, before the outer product. With wavelength
lambda_i = 2 * pi / f_i and scale factor s (8, or 32 for Llama 3.2 1B/3B; exercise 2):

    lambda_i < 2048           keep f_i      fast pairs: local order must stay sharp
    lambda_i > 8192           f_i / s       slow pairs: positions are squeezed so that
                                            s times longer texts reuse the angles seen
                                            in training (position interpolation)
    2048 <= lambda_i <= 8192  blend:  smooth = (8192 / lambda_i - 1) / (4 - 1)
                                      f_i' = (1 - smooth) * f_i / s + smooth * f_i

(8192 is the old context length; 8192 / 1 and 8192 / 4 are the two thresholds, from
Meta's constants low_freq_factor = 1 and high_freq_factor = 4.) For head_dim 128: 29
frequencies kept (i = 0..28), 6 blended (i = 29..34), 29 divided. With s = 8,
f_63 = 2.455e-6 becomes 3.069e-7.

Precision
---------
Compute the frequencies, the angles and the rotation in float32, and cast only the
final result back. In bfloat16 even the positions themselves round: 1001 becomes 1000
or 1004, and an angle near 1000 radians can be off by up to 2 radians.

Where tensors live
------------------
precompute_freqs_cis makes its table from numbers alone, like causal_mask (exercise
7): it takes device=None and makes its tensors there, torch.arange(...,
device=device); your forward asks for the table where its tokens are. apply_rope
makes nothing new. On Apple's MPS, complex arithmetic depends on the macOS and torch
versions, so there the reference rotates in real numbers: with cos and sin the real
and imaginary parts of freqs_cis, the pair (even, odd) becomes (even * cos - odd *
sin, even * sin + odd * cos), the same rotation. If your complex version fails on
MPS, add that branch under `if x.device.type == "mps":`; on the CPU and on CUDA the
complex version is the one to write.

Pitfalls
--------
- Rotating halves instead of interleaved pairs (see above).
- The exponent: -2i/head_dim with i = 0..63 (equivalently the even numbers 0, 2, ..,
  126 divided by head_dim). -i/head_dim gives the wrong frequencies.
- Forgetting the broadcast over heads: freqs_cis is [seq, 64], x is [seq, heads, 64].
- view_as_complex needs float32 (not bfloat16) and a last dimension of size 2.
- Applying the scaling to the angles instead of to the frequencies (the same thing
  mathematically, but not the same rounding), or to Llama 3, which has no scaling.

Run the tests: pytest exercises/ -k ex06
"""

import math

import torch


def apply_scaling(freqs: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Llama 3.1 frequency scaling: keep high frequencies, divide low ones, blend in between.

    Args:
        freqs: [head_dim // 2] float32, the base frequencies f_i ([64] for 8B).
        scale_factor: s, 8.0 or 32.0.

    Returns:
        [head_dim // 2] float32, the scaled frequencies.

    Hints:
        - Work on the whole vector at once: compute every wavelength, then choose per
          element with torch.where.
        - Mind the boundaries: strictly below 2048 keep, strictly above 8192 divide,
          both ends of the middle band blend.
    """
    raise NotImplementedError("not started: implement apply_scaling in exercises/ex06_rope.py (exercise 6)")


def precompute_freqs_cis(
    head_dim: int, end: int, theta: float, scale_factor: float | None = None, device=None
) -> torch.Tensor:
    """exp(i * t * f_k) for positions t in [0, end) and frequencies f_k = theta^(-2k/head_dim).

    Args:
        head_dim: size of one head (128 for 8B, 64 for Llama 3.2 1B).
        end: number of positions; rows 0 .. end-1.
        theta: rope_theta (500000.0).
        scale_factor: None for plain RoPE, else apply your apply_scaling to the
            frequencies first.
        device: where to make the table; None for the default device.

    Returns:
        [end, head_dim // 2] complex64, each entry of absolute value 1. For the prompt,
        end = 17 gives [17, 64].

    Hints:
        - torch.arange(0, head_dim, 2, device=device) gives the exponents'
          numerators; make them float32 before dividing.
        - torch.outer(positions, freqs) is the [end, head_dim // 2] table of angles.
        - torch.polar(magnitude, angle) builds the complex numbers.
    """
    raise NotImplementedError("not started: implement precompute_freqs_cis in exercises/ex06_rope.py (exercise 6)")


def apply_rope(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """Rotate each adjacent pair (2k, 2k+1) of every head by its position's angle.

    Args:
        x: [seq, n_heads, head_dim], queries or keys ([17, 32, 128] or [17, 8, 128]).
        freqs_cis: [seq, head_dim // 2] complex64, already the rows for x's positions:
            row s rotates row s of x.

    Returns:
        [seq, n_heads, head_dim] in x's dtype.

    Hints:
        - Upcast, reshape the last dimension into (head_dim // 2, 2), view as complex.
        - Insert a dimension in freqs_cis so that it broadcasts over the heads.
        - view_as_real, flatten the last two dimensions, cast back with type_as.
    """
    raise NotImplementedError("not started: implement apply_rope in exercises/ex06_rope.py (exercise 6)")
