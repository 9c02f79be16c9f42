"""Exercise 2: Checkpoint and config.

A model is two things: a handful of numbers that fix its shape, and the tensors that
fill that shape. Meta ships them side by side in one folder:

    Meta-Llama-3-8B/
        params.json          the shape: about ten numbers
        consolidated.00.pth  the weights: 291 tensors, 16.1 GB of bfloat16
        tokenizer.model      exercise 1
        checklist.chk        md5 sums of the three files

params.json
-----------
For Llama 3 8B the whole file is:

    {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8,
     "vocab_size": 128256, "multiple_of": 1024, "ffn_dim_multiplier": 1.3,
     "norm_eps": 1e-05, "rope_theta": 500000.0}

Llama 3.1 and 3.2 add "use_scaled_rope": true. You turn this dict into a ModelArgs,
the dataclass below, which is given: every later exercise receives one as `args`. Two
sizes are properties because they follow from the others:

    head_dim = dim // n_heads       = 4096 // 32 = 128
    n_rep    = n_heads // n_kv_heads = 32 // 8   = 4   (query heads per K/V head, exercise 8)

A missing or null n_kv_heads means ordinary multi-head attention: as many K/V heads as
query heads.

The feed-forward size
---------------------
params.json does not say how wide the feed-forward network is; Meta's code derives it
from dim with a formula that looks odd until you know its history (exercise 9 tells it):

    h = int(2 * (4 * dim) / 3)                    start from 2/3 of 4 * dim
    h = int(ffn_dim_multiplier * h)               only if a multiplier is given
    hidden = multiple_of * ceil(h / multiple_of)  round UP to a multiple

    Llama 3 8B:   16384 -> 10922 -> int(1.3 * 10922) = 14198 -> 14 * 1024 = 14336
    Llama 3.2 1B:  8192 ->  5461 -> int(1.5 * 5461)  =  8191 -> 32 * 256  =  8192

Each step truncates toward zero (Python's int), except the last, which rounds up.
Rounding to multiples of 256 or 1024 gives matrix shapes that tile well on hardware
and split evenly when a model is spread over several GPUs.

The RoPE scale factor
---------------------
Llama 3.1 stretched the context from 8192 to 131072 tokens by rescaling the slow RoPE
frequencies (exercise 6 explains how). params.json only says whether to do it, with
the boolean use_scaled_rope; Meta's code hard-codes the factor 8. But Llama 3.2 1B and
3B were trained with factor 32 (Hugging Face's config.json says 32, and Meta's
maintainers confirmed it in meta-llama/llama-models issue #166). So the kit decides:

    1. no use_scaled_rope (or false)       -> None: plain RoPE (Llama 3)
    2. a "rope_scaling_factor" key present -> that value (the kit's tiny fixtures use
                                              it; Meta's files never have it)
    3. (dim, n_layers) is (2048, 16) or (3072, 28), the Llama 3.2 1B and 3B shapes -> 32
    4. otherwise                           -> 8 (Llama 3.1, 3.3 70B)

and max_seq_len is 8192 without scaling, 131072 with it.

The weights file
----------------
consolidated.00.pth is written by torch.save: a zip archive whose tensor bytes are
stored raw, plus a pickle that describes how to rebuild the dict around them. For 8B:

    tok_embeddings.weight               [128256, 4096]
    layers.0.attention.wq.weight        [4096, 4096]
    layers.0.attention.wk.weight        [1024, 4096]
    layers.0.attention.wv.weight        [1024, 4096]
    layers.0.attention.wo.weight        [4096, 4096]
    layers.0.feed_forward.w1.weight     [14336, 4096]
    layers.0.feed_forward.w2.weight     [4096, 14336]
    layers.0.feed_forward.w3.weight     [14336, 4096]
    layers.0.attention_norm.weight      [4096]
    layers.0.ffn_norm.weight            [4096]
    ... the same nine for layers 1 to 31 ...
    norm.weight                         [4096]
    output.weight                       [128256, 4096]

That is 8,030,261,248 numbers, all bfloat16: 16 GB. Load it with torch.load and three
arguments that matter:

- mmap=True: the tensors become views of the file mapped into memory instead of copies
  read into RAM. Loading takes a moment instead of a minute, the operating system
  pages in only the bytes you touch, and it may drop them again under memory pressure
  because the file backs them. The 16 GB are never copied, which is how an 8B forward
  pass fits in 24 GB of RAM.
- weights_only=True: a .pth holds a Python pickle, and unpickling can call any
  function at all; a malicious checkpoint could run code on your machine the moment
  you load it. weights_only restricts the unpickler to tensors, dicts, lists and plain
  values. It is the default in recent PyTorch; say it anyway.
- map_location="cpu": a file saved from GPU tensors would otherwise try to load them
  back onto a GPU.

Keep the weights in bfloat16. Converting them to float32 would double them to 32 GB.

Pitfalls
--------
- Rounding the FFN size down, or to the nearest multiple, instead of up.
- Treating a missing ffn_dim_multiplier as 1.0 is fine; multiplying by None is not.
- Returning 8 or 32 when use_scaled_rope is absent: plain Llama 3 has no scaling.
- Returning an int where a float is expected: the factor is 32.0, not 32.

Run the tests: pytest exercises/ -k ex02
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class ModelArgs:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    norm_eps: float
    rope_theta: float
    hidden_dim: int  # FFN hidden size, derived from dim, multiple_of, ffn_dim_multiplier
    rope_scale_factor: float | None  # None: plain RoPE (Llama 3); 8 or 32: Llama 3.1/3.2 scaling
    max_seq_len: int  # 8192 for Llama 3, 131072 for 3.1 and 3.2

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def n_rep(self) -> int:
        return self.n_heads // self.n_kv_heads


def ffn_hidden_dim(dim: int, multiple_of: int, ffn_dim_multiplier: float | None) -> int:
    """Meta's FFN size: 2/3 of 4*dim, times the multiplier, rounded up to a multiple of multiple_of.

    Args:
        dim: the model width (4096 for 8B).
        multiple_of: round the result up to a multiple of this (1024 for 8B).
        ffn_dim_multiplier: an extra factor (1.3 for 8B), or None for no factor.

    Returns:
        The hidden size as an int: 14336 for Llama 3 8B, 8192 for Llama 3.2 1B and 3B.

    Hints:
        - Follow the three steps of the chapter literally; truncate with int() at the
          first two.
        - math.ceil of a division, times multiple_of, rounds up to a multiple.
    """
    raise NotImplementedError("not started: implement ffn_hidden_dim in exercises/ex02_checkpoint.py (exercise 2)")


def rope_scale_factor(params: dict) -> float | None:
    """None without use_scaled_rope; else an explicit rope_scaling_factor, 32 for 3.2 1B/3B, or 8.

    Args:
        params: the dict read from params.json.

    Returns:
        None, or the factor as a float (8.0, 32.0, or the explicit value).

    Hints:
        - params.get with a default handles a missing use_scaled_rope.
        - Check the four rules in order; the first that applies wins.
    """
    raise NotImplementedError("not started: implement rope_scale_factor in exercises/ex02_checkpoint.py (exercise 2)")


def model_args(params: dict) -> ModelArgs:
    """ModelArgs from the keys of a Meta params.json.

    Args:
        params: the dict read from params.json.

    Returns:
        A ModelArgs. For 8B: dim 4096, n_layers 32, n_heads 32, n_kv_heads 8,
        vocab_size 128256, norm_eps 1e-05, rope_theta 500000.0, hidden_dim 14336,
        rope_scale_factor None, max_seq_len 8192.

    Hints:
        - Copy the plain fields across; n_kv_heads falls back to n_heads when it is
          missing or null.
        - Use your ffn_hidden_dim and rope_scale_factor for the two derived fields;
          max_seq_len follows from whether there is a scale factor.
    """
    raise NotImplementedError("not started: implement model_args in exercises/ex02_checkpoint.py (exercise 2)")


def load_params(folder: str | Path) -> ModelArgs:
    """Read folder/params.json.

    Args:
        folder: a checkpoint folder in Meta's layout.

    Returns:
        The ModelArgs of that model.

    Hints:
        - json.loads of the file's text, then model_args.
    """
    raise NotImplementedError("not started: implement load_params in exercises/ex02_checkpoint.py (exercise 2)")


def load_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """Memory-map folder/consolidated.00.pth; weights_only refuses pickles that would run code.

    Args:
        folder: a checkpoint folder in Meta's layout with a single consolidated.00.pth.

    Returns:
        Meta's state dict: key name -> tensor, in the file's dtype (bfloat16), on the
        CPU, backed by the memory-mapped file (no copy).

    Hints:
        - One call to torch.load with map_location, mmap and weights_only.
        - Do not convert the tensors: no .float(), no .clone().
    """
    raise NotImplementedError("not started: implement load_weights in exercises/ex02_checkpoint.py (exercise 2)")
