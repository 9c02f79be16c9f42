"""Exercise 9: SwiGLU feed-forward.

Attention moves information between tokens. The feed-forward network (FFN) then
works on each token alone: the same small two-layer network applied to every row of
[seq, dim] independently. It is where most of a transformer's parameters live, and
much of what the model "knows" is thought to be stored in these matrices.

The math
--------
Llama's FFN is a SwiGLU (Shazeer, 2020, "GLU Variants Improve Transformer"):

    gate = silu(x @ w1^T)          silu(z) = z * sigmoid(z), also called swish
    up   = x @ w3^T
    out  = (gate * up) @ w2^T      * is elementwise

w1 is the gate projection, w3 the up projection and w2 the down projection (Hugging
Face names them gate_proj, up_proj and down_proj). Shapes for Llama 3 8B on the
prompt, hidden_dim = 14336 (exercise 2):

    x                        [17, 4096]
    linear(x, w1)            w1 [14336, 4096] -> [17, 14336], then silu
    linear(x, w3)            w3 [14336, 4096] -> [17, 14336]
    gate * up                [17, 14336]
    linear(., w2)            w2 [4096, 14336] -> [17, 4096]

You will call your linear from exercise 5 three times; silu is in
torch.nn.functional (imported below as F).

Why a gate
----------
A classic FFN is out = act(x @ W_in^T) @ W_out^T with ReLU or GELU: each hidden unit
fires or not depending on its own input. In a gated linear unit, one projection (the
gate, through silu) decides per hidden unit how much of a second, purely linear
projection (up) gets through. The product of two projections makes the network more
expressive for the same size: in Shazeer's comparison the gated variants, with
SwiGLU and GEGLU best among them, reached lower perplexity than ReLU or GELU FFNs of
equal cost. PaLM and then Llama adopted SwiGLU.

Why 14336, and the 2/3 factor
-----------------------------
A classic FFN with hidden size 4 * dim has two matrices: 2 x (4 * dim * dim) = 8 dim^2
parameters. SwiGLU has three. To spend the same 8 dim^2, the hidden size becomes
2/3 x 4 * dim = 8 * dim / 3 (10922 for dim 4096), since 3 x (8 * dim / 3) x dim =
8 dim^2. That is where the 2/3 in exercise 2's formula comes from. Meta then grew it
by ffn_dim_multiplier (1.3) and rounded up to a multiple of 1024: 14336.

The FFN of one 8B layer has 3 x 4096 x 14336 = 176,160,768 parameters, 81% of the
layer's 218,112,000; over 32 layers that is 5.6 of the 8.0 billion. Generating one
token means reading all of them from memory, which is why the FFN dominates the time
of every decoding step.

Pitfalls
--------
- silu on the wrong branch: the gate is w1's output, not w3's. Swapping w1 and w3
  gives numbers of the right shape and the wrong value.
- silu applied after the product, or to the output of w2.
- The argument order of this function is (x, w1, w2, w3), not (x, w1, w3, w2).
- Forgetting the transpose: every weight is [out_features, in_features]; your linear
  already takes care of that.
- Upcasting to float32 here: Meta runs the FFN in the model's dtype.

Run the tests: pytest exercises/ -k ex09
"""

import torch
import torch.nn.functional as F

# Your function from exercise 5: call it here.
from .ex05_qkv import linear


def feed_forward(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor) -> torch.Tensor:
    """w2(silu(w1 x) * w3 x).

    Args:
        x: [seq, dim], the normalized hidden states ([17, 4096]).
        w1: [hidden_dim, dim], the gate projection ([14336, 4096]).
        w2: [dim, hidden_dim], the down projection ([4096, 14336]).
        w3: [hidden_dim, dim], the up projection ([14336, 4096]).

    Returns:
        [seq, dim] ([17, 4096]) in x's dtype.

    Hints:
        - Two projections up to hidden_dim, one of them through F.silu, multiply them
          elementwise, one projection back down.
    """
    raise NotImplementedError("not started: implement feed_forward in exercises/ex09_feed_forward.py (exercise 9)")
