"""Exercise 11: The full forward pass.

Time to run the whole model. The forward pass turns token ids into logits, one score
per vocabulary entry for every position, and the largest score of the last position
is the model's guess for the next token. On Meta-Llama-3-8B and our prompt, that guess
is token 2983: "42".

The pipeline
------------
    tokens                                       [17]            int64
    embed (ex03) with tok_embeddings.weight      [17, 4096]      bfloat16
    freqs_cis (ex06) for positions 0 .. 16       [17, 64]        complex64
    causal_mask (ex07)                           [17, 17]        float32
    transformer_block (ex10), layers 0 .. 31     [17, 4096]      each time
    rms_norm (ex04) with norm.weight             [17, 4096]
    linear (ex05) with output.weight             [128256, 4096] -> [17, 128256]
    cast to float32                              [17, 128256]    float32

You will call your embed, precompute_freqs_cis, causal_mask, transformer_block,
rms_norm and linear here: after this exercise the whole model is your code.

Positions, freqs_cis and the mask
---------------------------------
forward(tokens, weights, args, cache=None, start_pos=0) is told where its tokens sit:
they are positions start_pos .. start_pos + seq - 1 of the whole sequence. Exercise 12
calls forward with a KV cache, first for the prompt (start_pos = 0) and then one token
at a time (start_pos = 17, 18, ...); this exercise's "cached" tests already do so. So
compute freqs_cis for positions 0 .. start_pos + seq - 1 with args.head_dim,
args.rope_theta and args.rope_scale_factor, and keep only the rows at and after
start_pos. Build the causal mask for seq queries and start_pos earlier positions when
seq > 1; for a single token pass None (it may see everything). Pass cache and
start_pos to every block.

Why a final norm
----------------
In a pre-norm model the residual stream is never normalized inside the blocks and
its scale grows with depth (exercise 10). The last RMSNorm, with its own weight
norm.weight, brings it to a standard size before the output projection.

Logits
------
output.weight has one row per vocabulary entry; the dot product of a hidden state with
row t is the unnormalized log-probability ("logit") of token t coming next. Row i of
the logits predicts the token at position i + 1, so every position gets a prediction
(one of the kit's extras looks at them all); the last row predicts what follows the prompt.

In Llama 3.2 1B and 3B the output matrix is the embedding table itself (tied
embeddings). Meta's checkpoints still contain output.weight, and the kit's loaders
always provide the key, so read weights["output.weight"] in every case.

Why float32 logits: the matrix product runs in bfloat16, but then the logits are cast
to float32 before anything looks at them. bfloat16 keeps about 3 significant digits:
near a logit of 20 its representable values are 0.125 apart, so close candidates tie
or swap, and a softmax over 128256 entries (for sampling) needs the precision. Cast
after the output projection, not before it: an [128256, 4096] float32 copy of the
weight would cost 2 GB. For the prompt the float32 logits take 17 x 128256 x 4 bytes =
8.7 MB.

Greedy next token and generation without a cache
------------------------------------------------
next_token picks the id with the largest logit at the last position: greedy decoding
(exercise 12 says more). generate_uncached repeats the whole thing: run forward on the
prompt plus everything generated so far, take the last row, pick the argmax, stop if
it is a stop token (from exercise 1: STOP_TOKENS), otherwise yield it with its logits
and append it. It is a Python generator: use yield, and return to stop. It is correct
and slow: step n recomputes all n positions, so n tokens cost on the order of n^2
token-passes through the model. Exercise 12 removes that waste and must agree with it.

Where tensors live
------------------
forward makes two tensors, and both follow tokens, as in Meta's code:
precompute_freqs_cis(..., device=tokens.device) and causal_mask(...,
device=tokens.device). generate_uncached turns a Python list into a tensor:
torch.tensor(ids) lands on the default device, which is the chosen device whenever
the kit runs your code (grading, generate, chat); torch.tensor(ids,
device=weights["tok_embeddings.weight"].device) puts it with the weights anywhere.
int(logits.argmax()) is fine on a GPU: it copies one number to Python. A .cpu() or a
device="cpu" inside forward fails on a GPU run, and the grader names it.

Pitfalls
--------
- freqs_cis for the wrong positions: [0, seq) is right only when start_pos = 0.
- Forgetting the final norm, or using a block's norm weight for it.
- Logits left in bfloat16, or the weight upcast instead of the result.
- logits[0] instead of logits[-1]: the first row predicts the second token.
- Yielding the stop token: stop before yielding it.
- next_token returning a tensor: return a Python int.

Run the tests: pytest exercises/ -k ex11
"""

from collections.abc import Iterator

import torch

# Your functions from earlier exercises: call them here.
from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex05_qkv import linear
from .ex06_rope import precompute_freqs_cis
from .ex07_attention import causal_mask
from .ex10_transformer_block import transformer_block


def forward(
    tokens: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs, cache=None, start_pos: int = 0
) -> torch.Tensor:
    """Logits in float32 for every position of tokens, which sit at positions start_pos.. of the sequence.

    Args:
        tokens: [seq] int64 ([17] for the prompt).
        weights: Meta's state dict (bfloat16 for a real checkpoint).
        args: the ModelArgs.
        cache: None, or the KVCache of exercise 12; pass it to every block.
        start_pos: position of tokens[0] in the whole sequence.

    Returns:
        [seq, vocab_size] float32 ([17, 128256]). On Meta-Llama-3-8B, the argmax of
        the last row for the prompt is 2983.

    Hints:
        - Embed, then prepare freqs_cis and the mask once; every block shares them.
        - precompute_freqs_cis up to start_pos + seq, then slice off the first
          start_pos rows.
        - A plain for loop over range(args.n_layers); then the final norm, the output
          projection, .float().
    """
    raise NotImplementedError("not started: implement forward in exercises/ex11_forward.py (exercise 11)")


def next_token(logits: torch.Tensor) -> int:
    """Greedy choice: the id with the largest logit at the last position.

    Args:
        logits: [seq, vocab_size] float32, as returned by forward.

    Returns:
        A Python int (2983 for the prompt on the real 8B).

    Hints:
        - The last row, its argmax, int().
    """
    raise NotImplementedError("not started: implement next_token in exercises/ex11_forward.py (exercise 11)")


def generate_uncached(
    prompt_ids: list[int], weights: dict[str, torch.Tensor], args: ModelArgs, max_new_tokens: int, stop_tokens=()
) -> Iterator[tuple[int, torch.Tensor]]:
    """Greedy generation that re-runs the whole sequence for every new token; yields (token, logits).

    Args:
        prompt_ids: the encoded prompt, with BOS (17 ids).
        weights: Meta's state dict.
        args: the ModelArgs.
        max_new_tokens: generate at most this many tokens.
        stop_tokens: ids that end generation (for example STOP_TOKENS of exercise 1);
            a stop token is not yielded.

    Yields:
        (token_id, logits): a Python int and the [vocab_size] float32 logits of the
        last position from which it was chosen.

    Hints:
        - Keep a growing Python list of ids; call forward on all of them each step.
        - Check for a stop token before you yield; return ends the generator.
    """
    raise NotImplementedError("not started: implement generate_uncached in exercises/ex11_forward.py (exercise 11)")
