"""Exercise 17: tensor parallelism.

Llama 3 70B is 141 GB of bf16 weights: more than one GPU holds, and more than most
machines. Meta ships it as 8 files, consolidated.00.pth to consolidated.07.pth, one
per GPU, and its reference code runs 8 processes, each holding one eighth of every
layer and computing its share of every matrix product. A few collective operations
combine the shares. This exercise writes that: the model of exercise 11, split over N
processes that run the same code on different slices of the weights, and give exactly
the same logits as one process (up to the order of float32 sums).

torch.distributed in five lines
-------------------------------
N processes (ranks 0 .. N-1) join one process group; the kit starts them for you (and
`torchrun --nproc-per-node N` does for a script). Inside, every rank runs the same
code:

    dist.get_rank(), dist.get_world_size()     this process's number, and N
    dist.all_reduce(t)                         t becomes the sum of every rank's t, on every rank
    dist.all_gather(parts, t)                  parts[r] becomes rank r's t, on every rank

Both are collectives: every rank must make the same calls, in the same order, with
tensors of the same shape, or the ranks wait for each other forever (the kit stops them
after 20 s and says which rank waited where). all_reduce works in place, on the tensor
you pass. The backend that moves the bytes is gloo on CPUs (the kit's) and NCCL between
GPUs; the code is the same. Two gloo gotchas: use the list form of all_gather
(all_gather_into_tensor is missing on gloo), and keep collectives out of
torch.inference_mode() (on some torch versions gloo's threads fail there).

Column-parallel and row-parallel
--------------------------------
A weight W [out, in] can be cut two ways.

Column-parallel, along dim 0: rank r holds rows r*out/N .. of W, so it computes its
own slice of the outputs, x @ W_r.T = [seq, out/N], from the whole x. No communication.

Row-parallel, along dim 1: rank r holds the columns that multiply its slice of the
inputs, x_r. Its product x_r @ W_r.T is [seq, out] but only a part: the full result is
the sum over ranks, one all_reduce.

Meta's layout (from Megatron-LM) pairs them so that nothing is sent in between:

    attention  wq, wk, wv column-parallel: rank r computes q, k, v of its heads only;
               heads are independent, so RoPE, the cache and attention run locally;
               wo row-parallel: its columns are exactly rank r's heads' outputs;
               all_reduce                                         (1 per layer)
    SwiGLU     w1, w3 column-parallel: rank r's hidden units; silu and * are
               elementwise, so they run locally;
               w2 row-parallel; all_reduce                        (2 per layer)

Everything else is cheap and replicated: every rank holds the norms whole and computes
every RMSNorm and residual itself, on the whole [seq, dim] hidden state.

Shapes for Llama 3 70B on 8 ranks (64 heads, 8 K/V heads, head_dim 128, hidden 28672):

    wq   [8192, 8192]  -> [1024, 8192]   8 query heads per rank
    wk   [1024, 8192]  -> [128, 8192]    1 K/V head per rank
    wo   [8192, 8192]  -> [8192, 1024]
    w1   [28672, 8192] -> [3584, 8192]   w3 the same
    w2   [8192, 28672] -> [8192, 3584]
    tok_embeddings, output [128256, 8192] -> [16032, 8192]

Each rank's attention is exercise 8's self_attention with its own args: 8 heads, 1 K/V
head, head_dim still 128. local_args gives them (dim = local heads x head_dim keeps
ModelArgs' head_dim = dim // n_heads right). Its feed-forward is exercise 9's
feed_forward on its shards. Both end in the all_reduce.

More ranks than K/V heads
-------------------------
tiny-llama3 has 4 query heads and 2 K/V heads; on 4 ranks each rank has one query head
but there are only 2 K/V heads to cut. Each K/V head is then held by 4 // 2 = 2 ranks
in a row: rank r holds K/V head r // (world_size // n_kv_heads), which is the head its
query heads read (query head h reads K/V head h // n_rep, exercise 8). Llama 3.1 405B on
16 GPUs does the same with its 8 K/V heads.

The embedding and the output
----------------------------
tok_embeddings is vocab-parallel: rank r holds rows r*V/N .. (r+1)*V/N - 1 (V = 128256).
It looks up the tokens of its slice, writes zeros for every other token, and the
all_reduce adds the ranks' rows: for each token exactly one rank contributed. The
output projection is column-parallel over the vocabulary: each rank computes the
logits of its slice, [seq, V/N], and all_gather puts the N slices side by side in rank
order, [seq, V], on every rank. With the same logits everywhere, every rank's greedy
choice is the same token, and generation needs nothing more.

What you write
--------------
split_dim, shard, shard_kv and shard_weights cut a whole checkpoint for one rank (the
kit also uses the same rules, from the reference, to read Meta's 8 files for any
number of ranks); local_args; then the parallel model: parallel_embed,
parallel_attention, parallel_feed_forward, parallel_forward and parallel_generate,
which read their rank and the world size from torch.distributed.

The tests run your parallel functions on 1, 2 and 4 ranks, N processes on this machine
(grader/engine/ranks.py), each fed its share cut by the reference, and compare rank 0's
result with the reference's on as many ranks, which equals the single-process model's
to float32 noise. Every rank must end with the same result. A rank that raises, dies
or waits in a collective no one else joined is one failure that names the rank. Your
own model on N ranks: `llama3-grader generate --ranks 2`; across machines, torchrun
(docs/tensor-parallel.md).

Pitfalls
--------
- all_reduce on the function's input changes it in place: reduce a new tensor.
- dist.reduce sums onto one rank only: every rank needs the sum (all_reduce).
- Forgetting to zero the tokens of other ranks' slices in the embedding, or an off-by-one
  at a slice's edge (the tests feed id 0 and the first and last id of every slice).
- Reading K/V head r % n_kv_heads (tiled) instead of r // (world_size // n_kv_heads).
- A KVCache for every K/V head: each rank caches only its own, local_args(...).n_kv_heads.
- A collective inside `if rank == 0:`: the other ranks never join it.
- Gathering the logits in a different order than the ranks'.

The grader names each of these (a collective that only some ranks call, by the ranks
that waited and where).

Run the tests: pytest exercises/ -k ex17
"""

from collections.abc import Iterator

import torch
import torch.distributed as dist

# Your functions from exercises 3 to 12: call them here.
from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex05_qkv import linear
from .ex06_rope import precompute_freqs_cis
from .ex07_attention import causal_mask
from .ex08_multi_head_attention import self_attention
from .ex09_feed_forward import feed_forward
from .ex12_generation import KVCache


def split_dim(name: str) -> int | None:
    """The dimension Meta's layout cuts a weight along.

    Args:
        name: a name of Meta's checkpoint, e.g. "layers.0.attention.wo.weight".

    Returns:
        0 for the column-parallel wq, wk, wv, w1, w3 and the vocab-parallel
        tok_embeddings.weight and output.weight; 1 for the row-parallel wo and w2; None
        for the norms, which every rank holds whole.

    Hints:
        - name.endswith(("attention.wq.weight", ...)) tests several endings at once; the
          layer number in the middle of the name does not matter.
    """
    raise NotImplementedError("not started: implement split_dim in exercises/ex17_tensor_parallel.py (exercise 17)")


def shard(weight: torch.Tensor, dim: int, rank: int, world_size: int) -> torch.Tensor:
    """rank's equal share of weight along dim.

    Args:
        weight: [out, in].
        dim: 0 ([out / world_size, in]) or 1 ([out, in / world_size]).
        rank: 0 .. world_size - 1.
        world_size: the number of ranks; it divides weight.shape[dim].

    Returns:
        The rank-th of world_size equal slices, contiguous (a slice along dim 1 must be
        copied; a slice along dim 0 already is contiguous, and stays a view).

    Hints:
        - weight.narrow(dim, start, length), or weight.chunk(world_size, dim)[rank];
          then .contiguous().
    """
    raise NotImplementedError("not started: implement shard in exercises/ex17_tensor_parallel.py (exercise 17)")


def shard_kv(weight: torch.Tensor, n_kv_heads: int, rank: int, world_size: int) -> torch.Tensor:
    """wk or wv: the K/V heads rank holds.

    Args:
        weight: [n_kv_heads * head_dim, dim].
        n_kv_heads: the model's K/V heads.
        rank, world_size: as in shard.

    Returns:
        With world_size <= n_kv_heads: shard(weight, 0, ...), [n_kv_heads / world_size *
        head_dim, dim]. With more ranks: the one head rank's query heads read, head
        rank // (world_size // n_kv_heads), [head_dim, dim].

    Hints:
        - weight.view(n_kv_heads, head_dim, dim) puts each head's rows together; index it
          with the head rank reads.
    """
    raise NotImplementedError("not started: implement shard_kv in exercises/ex17_tensor_parallel.py (exercise 17)")


def shard_weights(weights: dict[str, torch.Tensor], args: ModelArgs, rank: int,
                  world_size: int) -> dict[str, torch.Tensor]:
    """rank's share of every weight, under the same names.

    Args:
        weights: Meta's state dict (output.weight present, tied or not).
        args: the ModelArgs (n_kv_heads).
        rank, world_size: as in shard.

    Returns:
        shard_kv for wk and wv, shard along split_dim(name) for the other matrices, the
        norms as they are.

    Hints:
        - One loop over weights.items(); test for wk and wv before split_dim, which says 0
          for them too.
    """
    raise NotImplementedError("not started: implement shard_weights in exercises/ex17_tensor_parallel.py (exercise 17)")


def local_args(args: ModelArgs, world_size: int):
    """The ModelArgs one rank's attention sees.

    Args:
        args: the model's ModelArgs.
        world_size: the number of ranks.

    Returns:
        A copy (dataclasses.replace) with n_heads // world_size query heads,
        max(1, n_kv_heads // world_size) K/V heads, and dim = those query heads x
        head_dim, so that head_dim is unchanged.

    Hints:
        - import dataclasses; dataclasses.replace(args, n_heads=..., n_kv_heads=..., dim=...)
          leaves args itself unchanged.
        - head_dim is a property (dim // n_heads): keep it by setting dim, not head_dim.
    """
    raise NotImplementedError("not started: implement local_args in exercises/ex17_tensor_parallel.py (exercise 17)")


def parallel_embed(tokens: torch.Tensor, tok_embeddings: torch.Tensor) -> torch.Tensor:
    """The vocab-parallel embedding lookup.

    Args:
        tokens: [seq] token ids of the whole vocabulary.
        tok_embeddings: [vocab_size / world_size, dim], this rank's rows: those of ids
            rank * rows .. (rank + 1) * rows - 1.

    Returns:
        [seq, dim] in the table's dtype, the same on every rank: every token's row.

    Hints:
        - mine = (tokens >= start) & (tokens < start + rows); look up
          torch.where(mine, tokens - start, 0), zero the rows of the others
          (masked_fill), then dist.all_reduce.
    """
    raise NotImplementedError("not started: implement parallel_embed in "
                              "exercises/ex17_tensor_parallel.py (exercise 17)")


def parallel_attention(x: torch.Tensor, weights: dict[str, torch.Tensor], layer_id: int, args: ModelArgs,
                       freqs_cis: torch.Tensor, mask: torch.Tensor | None, cache=None,
                       start_pos: int = 0) -> torch.Tensor:
    """One layer's attention on this rank's heads, summed over the ranks.

    Args:
        x: [seq, dim], the normed hidden state (whole, on every rank).
        weights: this rank's shard_weights.
        layer_id, freqs_cis, mask, cache, start_pos: as in exercise 8; the cache holds
            this rank's K/V heads.
        args: the model's ModelArgs (not local_args).

    Returns:
        [seq, dim], the whole attention output, on every rank.

    Hints:
        - self_attention(x, weights, layer_id, local_args(args, world_size), ...) is this
          rank's part; all_reduce it.
    """
    raise NotImplementedError("not started: implement parallel_attention in "
                              "exercises/ex17_tensor_parallel.py (exercise 17)")


def parallel_feed_forward(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor) -> torch.Tensor:
    """The SwiGLU feed-forward on this rank's hidden units, summed over the ranks.

    Args:
        x: [seq, dim], whole on every rank.
        w1, w3: [hidden_dim / world_size, dim]; w2: [dim, hidden_dim / world_size].

    Returns:
        [seq, dim], the whole output, on every rank.

    Hints:
        - feed_forward(x, w1, w2, w3) is this rank's part: w2's columns take only this rank's
          hidden units; dist.all_reduce sums the parts in place.
    """
    raise NotImplementedError("not started: implement parallel_feed_forward in "
                              "exercises/ex17_tensor_parallel.py (exercise 17)")


def parallel_forward(tokens: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs, cache=None,
                     start_pos: int = 0) -> torch.Tensor:
    """The forward of exercise 11 on this rank's shards.

    Args:
        tokens: [seq] at positions start_pos ..; weights: this rank's shard_weights;
        args: the model's ModelArgs; cache: a KVCache of this rank's K/V heads, or None.

    Returns:
        [seq, vocab_size] float32 logits, the same on every rank.

    Hints:
        - parallel_embed, then per layer h + parallel_attention(rms_norm(h)), then
          h + parallel_feed_forward(rms_norm(h)); the final norm.
        - linear(h, weights["output.weight"]) is [seq, vocab_size / world_size]; gather
          world_size of them with dist.all_gather(list, tensor), torch.cat on the last
          dimension, then .float().
    """
    raise NotImplementedError("not started: implement parallel_forward in "
                              "exercises/ex17_tensor_parallel.py (exercise 17)")


def parallel_generate(prompt_ids: list[int], weights: dict[str, torch.Tensor], args: ModelArgs, max_new_tokens: int,
                      stop_tokens=()) -> Iterator[tuple[int, torch.Tensor]]:
    """The generate of exercise 12 with parallel_forward; every rank yields the same tokens.

    Args:
        prompt_ids, max_new_tokens, stop_tokens: as in exercise 12.
        weights: this rank's shard_weights; args: the model's ModelArgs.

    Yields:
        (token_id, logits [vocab_size] float32), as exercise 12's generate.

    Hints:
        - The KVCache holds local_args(args, world_size).n_kv_heads heads of head_dim.
    """
    raise NotImplementedError("not started: implement parallel_generate in "
                              "exercises/ex17_tensor_parallel.py (exercise 17)")
