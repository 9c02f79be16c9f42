"""Exercise 15: Experiments (attention maps, predictions, no mask, RoPE drawn).

Your Llama works. Now look inside it, as the llama3-from-scratch notebooks do in their
"more hands-on experiments". Each function here computes what one picture shows; the
kit draws the pictures (matplotlib) and prints the tables:

    llama3-grader explore --checkpoint ~/.cache/llama3-kit/models/smollm2-135m-instruct --out pictures/

runs all four on the trained SmolLM2 with your code (`explore 1` just the first, and so
on). On the tiny random models the pictures show noise; on trained weights, structure.

1. Attention maps
-----------------
Exercise 7 computed probs = softmax(q k^T / sqrt(head_dim) + mask) and multiplied it
by v right away. Here you keep probs, for every head of one layer, on the prompt:

    h = embeddings, then layers 0 .. layer_id - 1        [seq, dim]
    x = rms_norm(h, attention_norm of layer_id)           [seq, dim]
    q, k = project_qkv(x, ...), rotated by RoPE           [seq, n_heads, hd], [seq, n_kv_heads, hd]
    k = repeat_kv(k, n_rep)                               [seq, n_heads, hd]
    probs = softmax(q k^T / sqrt(hd) + causal mask)       [n_heads, seq, seq], float32

Row i of a head's map is what token i looks at; every row sums to 1 and the upper
triangle is 0. Trained models show patterns a random one never does: heads that look at
the previous token (a bright line just below the diagonal), heads that look at the
same word elsewhere, and many heads that put most of their weight on position 0 (an
"attention sink": softmax must give its weight to *something*, and the first token,
seen by every position, is where heads park it when they have nothing to attend to).

2. The prediction from every position
-------------------------------------
forward returns logits for every position, not only the last: row i is the model's
guess for token i + 1 having read tokens 0..i. (Training uses every row at once: one
forward pass is seq predictions.) top_predictions turns logits [seq, vocab] into the
k most likely next tokens and their probabilities at every position, a table with one
line per prompt token. On a trained model you can watch the guess sharpen as the
sentence unfolds: after "The capital of", a spread of candidates; after "The capital
of France is", " Paris" with most of the mass.

3. The same without the causal mask
-----------------------------------
forward_unmasked is exercise 11's forward with mask=None in every layer: each position
now sees the tokens after it too. Read the table again. Row i was meant to predict
token i + 1, and now it can see token i + 1: early positions suddenly "predict" the
next word of the prompt with confidence, because they copy it. This is exactly the
cheating the causal mask prevents during training, and why a model trained with the
mask is not used without it. With a single token nothing changes. Even the last
position, which saw every token already, changes from the second layer on: the earlier
positions it reads have now seen the future themselves.

4. RoPE drawn
-------------
RoPE (exercise 6) turns each pair (x_2i, x_2i+1) of a query or key by the angle t * f_i
at position t. rope_rotation takes one head vector x [head_dim] and returns where each
of its pairs lands at every position 0 .. end - 1: [end, head_dim // 2, 2]. Drawn pair by
pair, the first pairs (f_0 = 1 radian per position) spin round their circle every 6
positions; the last ones (f = theta^(-(head_dim - 2) / head_dim), about 3e-6 for Llama 3)
barely move in a thousand. Each point stays on its circle: rotation keeps lengths, so
RoPE changes directions only, and the dot product of a rotated query and key depends
only on how far apart they are.

    apply_rope(x repeated at every position [end, 1, head_dim], freqs_cis[:end])
                                                       -> [end, 1, head_dim]
    view the head dimension as pairs                   -> [end, head_dim // 2, 2]

All four are graded on goldens like every exercise, with your earlier functions
replaced by the reference's, so a mistake shows here and not elsewhere.

Pitfalls
--------
- Attention maps from the wrong layer's input: layer L's queries come from the output
  of layers 0 .. L - 1, normed with layer L's attention_norm.
- Forgetting repeat_kv (or using repeat instead of repeat_interleave) for the K heads.
- top_predictions on logits instead of probabilities: the table shows probabilities.
- forward_unmasked that still masks (for instance through exercise 11's forward).

The grader names each of these (for the maps: from the embeddings, from one layer too
many, with K heads tiled, without the mask).

Run the tests: pytest exercises/ -k ex15
"""

import math

import torch

# Your functions from the core: call them here.
from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex05_qkv import linear, project_qkv
from .ex06_rope import apply_rope, precompute_freqs_cis
from .ex07_attention import causal_mask
from .ex08_multi_head_attention import repeat_kv
from .ex10_transformer_block import transformer_block


def attention_probs(tokens: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs,
                    layer_id: int) -> torch.Tensor:
    """The softmax weights of every head of layer layer_id over the prompt: [n_heads, seq, seq], float32, rows sum to 1.

    Args:
        tokens: [seq] token ids of the prompt.
        weights, args: the model.
        layer_id: which layer, 0 .. n_layers - 1.

    Returns:
        [n_heads, seq, seq] float32: row i of head h is where position i of the prompt
        looks, the softmax over keys 0 .. seq - 1 (zero above the diagonal).

    Hints:
        - Run transformer_block for layers 0 .. layer_id - 1 with the causal mask.
        - Heads first for the matmul: q.transpose(0, 1) is [n_heads, seq, head_dim].
        - The scores in float32, then + mask, then softmax over the last dimension.
    """
    raise NotImplementedError("not started: implement attention_probs in exercises/ex15_experiments.py (exercise 15)")


def forward_unmasked(tokens: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs) -> torch.Tensor:
    """The forward of exercise 11 with no causal mask: every position sees every other. Logits [seq, vocab_size],
    float32.

    Args:
        tokens: [seq] token ids of the prompt.
        weights, args: the model.

    Returns:
        [seq, vocab_size] float32 logits of every position, each computed from the whole
        prompt, the tokens after it included.

    Hints:
        - Your forward's loop, passing mask=None to every transformer_block.
    """
    raise NotImplementedError("not started: implement forward_unmasked in exercises/ex15_experiments.py (exercise 15)")


def top_predictions(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most likely next tokens after every position: (probabilities [seq, k] float32, descending; ids [seq, k]).

    Args:
        logits: [seq, vocab_size], e.g. forward's logits of the prompt.
        k: how many tokens per position.

    Returns:
        (probs, ids): probs [seq, k] float32, each row in descending order, the softmax over
        the whole vocabulary; ids [seq, k], the token ids of those probabilities.

    Hints:
        - softmax in float32 over the vocabulary, then Tensor.topk(k, dim=-1).
    """
    raise NotImplementedError("not started: implement top_predictions in exercises/ex15_experiments.py (exercise 15)")


def rope_rotation(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """One head vector x [head_dim] rotated by RoPE to every position of freqs_cis [end, head_dim // 2], as the 2-D
    points of its pairs: [end, head_dim // 2, 2] (pair i of position t is (x_2i, x_2i+1) turned by t * f_i).

    Args:
        x: [head_dim], one head's query or key vector.
        freqs_cis: [end, head_dim // 2] complex64, exercise 6's table.

    Returns:
        [end, head_dim // 2, 2] float32: for each position t and pair i, the point
        (x_2i, x_2i+1) rotated by the angle t * f_i.

    Hints:
        - x.expand(end, 1, head_dim) puts the same vector at every position (one head).
        - apply_rope, then reshape the head dimension into pairs; float32.
    """
    raise NotImplementedError("not started: implement rope_rotation in exercises/ex15_experiments.py (exercise 15)")
