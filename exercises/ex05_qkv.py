"""Exercise 5: Queries, keys, values.

Attention (exercises 7 and 8) lets every token gather information from the tokens
before it. To do that, each token first produces three vectors from its normalized
hidden state:

    query  "what am I looking for?"
    key    "what do I offer to someone looking?"
    value  "what do I hand over if I am chosen?"

A token's query is compared with every key; the better the match, the more of that
key's value flows into the token's output. All three are plain linear maps of the
same input, with three weight matrices: wq, wk and wv. No biases anywhere in Llama.

Linear layers and the weight layout
-----------------------------------
PyTorch (and Meta's checkpoint) store a linear layer's weight as [out_features,
in_features]: row j holds the weights of output feature j, so each output is the dot
product of the input with one contiguous row. Applying the layer to token vectors
stored as rows therefore multiplies by the transpose:

    y = x @ W.T        x [seq, in], W [out, in], y [seq, out]

torch.nn.functional.linear(x, W) computes exactly this. It never materialises W.T:
the matrix-multiply routine (BLAS on the CPU) reads W transposed in place. With a 2-D
input [seq, in] it is a single matrix-matrix product, the fastest shape there is,
which is why this kit keeps activations 2-D [seq, dim] around every linear layer and
reshapes into heads only afterwards. You will call your `linear` for every weight
matrix of the model from now on.

Heads
-----
Llama does not run one big attention but n_heads small ones side by side, each on its
own head_dim = 128 slice. Different heads learn different patterns (one follows the
previous token, another the subject of the sentence) at the cost of a single big one.
The split is just a reshape of the projection's output: the 4096 outputs of wq are
32 consecutive blocks of 128, block h belonging to head h (rows h*128 .. h*128+127 of
wq). For Llama 3 8B and our 17-token prompt:

    x (normed hidden states)   [17, 4096]
    q = linear(x, wq)          wq [4096, 4096] -> [17, 4096] -> view [17, 32, 128]
    k = linear(x, wk)          wk [1024, 4096] -> [17, 1024] -> view [17, 8, 128]
    v = linear(x, wv)          wv [1024, 4096] -> [17, 1024] -> view [17, 8, 128]

Why are k and v only 1024 wide? Llama 3 uses grouped-query attention: 32 query heads
but only n_kv_heads = 8 key/value heads, each shared by 4 query heads. Exercise 8
explains why that saves memory; here it only means that wk and wv have 8 * 128 = 1024
rows instead of 4096.

The function is given n_heads and n_kv_heads but not head_dim: derive it from the
weight's shape (rows of wq divided by n_heads).

Pitfalls
--------
- x @ W without the transpose. For wk that fails with a shape error, which is kind.
  For wq, which is square, it runs and gives wrong numbers, which is not.
- Viewing as [17, 128, 32]: the head index is the slower-changing axis, so it comes
  first after seq: [seq, n_heads, head_dim].
- Transposing to [n_heads, seq, head_dim] here: return [seq, heads, head_dim];
  exercise 8 rearranges for attention.
- Looping over heads or over tokens: one product per matrix does everything.

Run the tests: pytest exercises/ -k ex05
"""

import torch


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight.T, with weight in PyTorch's [out_features, in_features] layout.

    Args:
        x: [seq, in_features].
        weight: [out_features, in_features].

    Returns:
        [seq, out_features], in the common dtype of x and weight.

    Hints:
        - torch.nn.functional.linear does exactly this, with no bias.
    """
    raise NotImplementedError("not started: implement linear in exercises/ex05_qkv.py (exercise 5)")


def project_qkv(
    x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor, n_heads: int, n_kv_heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project every token to queries, keys and values and view each as heads.

    Args:
        x: [seq, dim], the normalized hidden states ([17, 4096] for 8B).
        wq: [n_heads * head_dim, dim] ([4096, 4096]).
        wk: [n_kv_heads * head_dim, dim] ([1024, 4096]).
        wv: [n_kv_heads * head_dim, dim] ([1024, 4096]).
        n_heads: number of query heads (32).
        n_kv_heads: number of key/value heads (8).

    Returns:
        (q, k, v): q [seq, n_heads, head_dim], k and v [seq, n_kv_heads, head_dim],
        all in x's dtype. For 8B: [17, 32, 128], [17, 8, 128], [17, 8, 128].

    Hints:
        - Use your linear three times, then Tensor.view to split the last dimension.
        - head_dim comes from wq.shape and n_heads.
    """
    raise NotImplementedError("not started: implement project_qkv in exercises/ex05_qkv.py (exercise 5)")
