"""Exercise 18: decode at the speed of memory.

A decode step multiplies one token by every weight matrix of the model, so it reads
every weight once: 16 GB for Llama 3 8B in bf16. That sets a ceiling: tokens per
second can be at most the memory bandwidth over the bytes read per token
(`llama3-grader bench` measures both on your machine and prints the quotient, the
"bandwidth bound"). Exercise 12's loop reaches a fraction of it, and on a GPU a small
fraction: the GPU spends most of each token waiting for Python. This exercise removes
that wait. The recipe is gpt-fast's: shapes that never change, a decode step compiled
once with torch.compile and replayed as a CUDA graph, and no host sync per token.

Where the time goes
-------------------
Exercise 12's step dispatches about 70 tensor operations per layer (norms,
projections, RoPE, the cache, attention, SwiGLU, residuals): torch.profiler counts
1,134 aten operators per token on Llama 3.2 1B's 16 layers. Each is a Python call and a
dispatch through torch, and on a GPU a kernel launch: CPU time spent before the GPU has
anything to do. At batch 1 a GPU reads a weight matrix so quickly that its kernels
finish faster than Python can issue them, and it idles between launches.

Then, at the end of each token, int(logits.argmax()) copies the token to the host. To
read it, the CPU must wait until the GPU has finished everything queued (a host sync),
and only then can it start issuing the next token's launches. Nothing overlaps.

CUDA graphs and what they demand
--------------------------------
A CUDA graph records a sequence of kernel launches once, with their arguments, and
replays the whole sequence with a single launch. The replay does no Python, no
dispatch, no per-kernel launch. But it replays exactly what was recorded: the same
kernels, the same shapes, reading and writing the same addresses. Anything that varies
from token to token must live in a tensor whose address stays put and whose contents
change; and nothing in the step may need the CPU to look at a value on the GPU.

torch.compile builds such a step from your Python. Dynamo runs the function's bytecode
symbolically and records the tensor operations into one graph, guarded by conditions
on what it assumed (shapes, dtypes, devices, the values of Python numbers it used);
inductor generates fused kernels for the graph (Triton on a GPU, C++ on a CPU); and
mode="reduce-overhead" captures the result in CUDA graphs. When a guard fails on a
later call, dynamo traces again: a recompile. Where dynamo cannot trace something (a
value that must be read on the host, for one), it splits the function there: a graph
break, with Python running between the pieces. fullgraph=True turns a break into an
error that names its line.

Exercise 12 breaks every one of these rules:

    cache.update returns cache_k[:end]    a shape that grows by one every token
    precompute_freqs_cis(start_pos + seq) a new RoPE table (and a new shape) per token
    causal_mask(seqlen, start_pos)        a mask made from Python ints
    start_pos, a Python int argument      a guard "start_pos == 17" that fails next time
    int(logits.argmax())                  a host sync per token

The static KV cache
-------------------
StaticCache holds exercise 12's buffers, [max_seq_len, n_kv_heads, head_dim] per
layer, but update takes the positions as a tensor, input_pos [seq] int64 on the device,
writes the new rows there with index_copy_ (an indexed copy whose position is data,
not a shape), and returns the whole buffers, every time:

    update(layer_id, input_pos, k, v)
        cache_k[layer_id].index_copy_(0, input_pos, k)      k [seq, n_kv_heads, head_dim]
        -> keys, values                                     [max_seq_len, n_kv_heads, head_dim]

The step now attends over all max_seq_len positions, and the mask hides those not yet
written (they hold zeros, or whatever an earlier generation left there). That is extra
reading, but little: for 8B with a 2048-position cache, 32 layers x 2 x 2048 x 8 x 128 x
2 bytes = 256 MiB per token against 16 GB of weights. The buffers are allocated once
and never replaced, so their addresses hold; torch._dynamo.mark_static_address(buffer)
tells the compiler so, and a CUDA graph then reads and writes them in place (an input
it cannot trust to stay put, it would copy in at every replay).

RoPE as two real tables
-----------------------
rope_tables computes the rotation of every position of the cache once, as two real
tables cos, sin [max_seq_len, head_dim // 2] float32 (exercise 6's freqs_cis is
cos + i sin: take .real and .imag). forward picks its rows with the position tensor,
cos[input_pos]: an indexed read, the same graph at every position. Real tables rather
than complex ones because inductor generates no code for complex numbers (it falls back
to eager kernels there). apply_rotary then rotates each adjacent pair (2k, 2k+1), as
exercise 6 did, in real arithmetic:

    x [seq, n_heads, head_dim] -> even = x[..., 0::2], odd = x[..., 1::2]   [seq, n_heads, head_dim // 2]
    (even, odd) -> (even * cos - odd * sin, even * sin + odd * cos)         cos, sin [seq, 1, head_dim // 2]
    interleaved back: stack on a last dimension of 2, flatten               [seq, n_heads, head_dim]

The mask from positions
-----------------------
Query i sits at position input_pos[i]; it may look at cache positions 0 .. input_pos[i]:

    attention_mask(input_pos [seq], max_seq_len) -> [seq, max_seq_len] float32
        0      where arange(max_seq_len)[j] <= input_pos[i]
        -inf   elsewhere: the future, and everything not yet written

One rule serves the prefill (input_pos = 0..16: a causal mask with the unused columns
hidden) and every decode step (input_pos = [17]: a row of zeros, then -inf). It is made
on the device from tensors, so it is the same graph at every position.

forward, decode_step, compile_step
----------------------------------
forward(tokens, input_pos, weights, args, cache, rope) is exercise 11's forward
written out layer by layer (the blocks of exercise 10 take complex RoPE and a Python
start_pos), with apply_rotary, cache.update(layer_id, input_pos, k, v) and the mask of
the whole cache. decode_step(token [1], input_pos [1], ...) is forward on one token,
and returns the greedy choice as a tensor, logits.argmax(-1, keepdim=True) [1], with the
logits [vocab_size]: nothing leaves the device. compile_step(step, device) compiles a
step whole: torch.compile(step, mode="reduce-overhead", fullgraph=True) on CUDA, and
torch.compile(step, fullgraph=True), the default mode, elsewhere (a CPU has no CUDA
graphs: there inductor's generated C++ and the fused operations are what it gains).

generate and its one sync
-------------------------
generate makes the cache and the tables once, prefills the prompt eagerly (its length
changes from prompt to prompt, and it runs once), then loops over compiled steps:

    token, logits = step(token, input_pos, weights, args, cache, rope)
    token, logits = token.clone(), logits.clone()   the next replay writes over a CUDA graph's outputs
    input_pos += 1                                  in place: the same tensor, the next position

Every token stays on the device in a list; at the end one torch.cat(tokens).tolist()
reads them all: one host sync for the whole generation. The price: generate cannot
stop at a stop token the moment it is chosen, since seeing it needs a sync. It
decodes all max_new_tokens and cuts the list at the first stop token afterwards, so
a short answer wastes the steps after it. (A chat loop that must stop early checks
every 8 or 16 tokens: one sync per check, a few wasted steps.) generate returns the
(token, logits) pairs exercise 12's generate yields, and the tests hold it to that.

Before the loop, generate marks every weight and both tables with
torch._dynamo.mark_static_address, as the cache marks its buffers: a CUDA graph copies
into itself every input it cannot assume stays put, and copying 16 GB of weights per
token would be slower than eager.

How the tests watch it
----------------------
Besides your outputs, the tests look at what torch.compile makes of your code. They
compile with dynamo alone (nothing generated, so a compile takes a second; torch.compile
in your code is given the same treatment while they run) and check that the step has
no graph break and compiles once over 32 decode steps, as do the cache's update and the
mask over positions; that forward builds no RoPE table and generate builds its tables
before decoding; that compile_step asks for the whole graph, and for CUDA graphs on a
GPU. On a GPU (pytest -m gpu) they also run eight steps under
torch.cuda.set_sync_debug_mode("error"), which raises at any host sync, and count
generate's syncs: as many for 12 new tokens as for 4.

What it buys
------------
On a GPU, one command measures exercise 12, your step eagerly and compiled, the
kernel launches per token and the bandwidth bound there (on a random checkpoint of the
8B shape, 16 GB in a temporary folder):

    llama3-grader checkpoint make --preset llama3-8b --out /tmp/llama3-8b
    LLAMA3_KIT_DEVICE=cuda llama3-grader bench --compile --impl solutions --checkpoint /tmp/llama3-8b

The reference's compiled decode of the 8B shape should reach at least 50% of the
measured bound (gpt-fast's class is about 70%); the bench prints where it stands.
(--device cuda does the same as the variable.) Leave out --impl solutions for yours.

On the kit's CPU (a 2-core AMD EPYC shared with other work; Llama 3.2 1B's shape, bf16,
one thread, 32 new tokens, the contenders taking turns token by token, medians of 3):

    exercise 12, eager          2.36 tok/s    1,134 aten operators per token
    static step, eager          2.24 tok/s    1,304
    static step, compiled       2.43 tok/s      115, and inductor's C++ loops
    kernel bound                2.38 tok/s    one F.linear through every matrix
    bandwidth bound             5.14 tok/s    12.7 GB/s read, 2.47 GB per token

Compiling made the step 1.10 times as fast as the same step eager and 1.03 times as
fast as exercise 12, after a compile of about a minute and a half (20 s once inductor's
cache on disk holds the kernels). Little, and for a reason the table shows: the
compiled step runs as fast as one F.linear through every matrix, the kernel bound.
Inductor leaves the matrix products to the same bf16 kernels eager calls, and on a CPU
those are nearly all of the time; what it removes, a thousand operators' dispatch and
the small element-wise passes it fuses into C++ loops, costs little next to them. Those
kernels read bf16 weights at about half the rate a plain sum streams memory, so on a
CPU the next gain is in the matrix kernel (exercise 16's int8 one reads half the
bytes), not in the launches. The static step run eagerly is a little slower than
exercise 12: it does more small operations per layer (RoPE in real arithmetic, a mask
over the whole cache) and static shapes buy nothing without a compiler. A GPU reads
memory many times faster and launches a kernel for every operator: there the launches
and the syncs weigh far more, and they are what CUDA graphs remove.

Where tensors live
------------------
Make every tensor on the device of its inputs: the cache and the tables with device=,
the mask with device=input_pos.device. generate takes the device of
weights["tok_embeddings.weight"]. A tensor made inside the step without a device lands
on the CPU when the step runs on a GPU.

Pitfalls
--------
- Returning cache_k[layer_id][:end]: a new shape every token, a recompile every token,
  and end has to come from the host.
- Passing the position as a Python int: dynamo guards on its value, so each new
  position compiles the step again. Keep input_pos a tensor and advance it in place.
- Building the mask or the RoPE tables from Python ints inside the step, or rebuilding
  the tables every call: the same recompiles, and the work of building them per token.
- int(...), .item(), .tolist() or .cpu() inside the step: a host sync per token and a
  graph break. (Under fullgraph=True recent torch may trace .item() instead of
  breaking; the compiled step then still reads the value on the host at every call.)
- Complex tensors in the step: inductor compiles no code for them.
- Keeping a CUDA graph's output without .clone(): the next replay overwrites it.
- Tensor.unflatten in the step: under torch.device(...), which the kit runs your code
  within, dynamo (torch 2.13) cannot trace it; reshape or view does the same.

Run the tests: pytest exercises/ -k ex18
"""

from collections.abc import Callable

import torch

# Your functions from exercises 3 to 9: call them here.
from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex05_qkv import linear, project_qkv
from .ex06_rope import precompute_freqs_cis
from .ex08_multi_head_attention import grouped_query_attention
from .ex09_feed_forward import feed_forward


class StaticCache:
    """Keys (after RoPE) and values of every layer in buffers of one fixed shape, written at a tensor of positions."""

    def __init__(self, n_layers: int, max_seq_len: int, n_kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device=None):
        """Allocate, for each layer, a key and a value buffer of zeros that will never be replaced.

        Args:
            n_layers: number of layers.
            max_seq_len: positions of the cache: the most that prompt and new tokens
                will fill.
            n_kv_heads: K/V heads (8 for 8B).
            head_dim: size of one head (128).
            dtype: the model's dtype.
            device: where to make the buffers; None for the default device.

        Store them as self.cache_k and self.cache_v, lists of n_layers tensors
        [max_seq_len, n_kv_heads, head_dim], as in exercise 12.

        Hints:
            - Exercise 12's __init__, then torch._dynamo.mark_static_address(buffer)
              on each of the 2 * n_layers buffers.
        """
        raise NotImplementedError(
            "not started: implement StaticCache.__init__ in exercises/ex18_static_decode.py (exercise 18)")

    def update(
        self, layer_id: int, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v at the positions input_pos holds; return the layer's whole buffers.

        Args:
            layer_id: which layer's buffers.
            input_pos: [seq] int64 on the device, the position of each row of k and v.
            k: [seq, n_kv_heads, head_dim], this chunk's keys, already rotated.
            v: [seq, n_kv_heads, head_dim], this chunk's values.

        Returns:
            (keys, values), each [max_seq_len, n_kv_heads, head_dim]: the whole
            buffers, whatever the positions, never a slice of them.

        Hints:
            - buffer.index_copy_(0, input_pos, k) writes row i of k at position
              input_pos[i], in place.
        """
        raise NotImplementedError(
            "not started: implement StaticCache.update in exercises/ex18_static_decode.py (exercise 18)")


def rope_tables(
    head_dim: int, max_seq_len: int, theta: float, scale_factor: float | None = None, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every position's angles, computed once for the whole cache.

    Args:
        head_dim: size of one head.
        max_seq_len: positions of the cache.
        theta: args.rope_theta.
        scale_factor: args.rope_scale_factor (Llama 3.1/3.2), or None.
        device: where to make the tables; None for the default device.

    Returns:
        (cos, sin), each [max_seq_len, head_dim // 2] float32: the real and imaginary
        parts of exercise 6's freqs_cis.

    Hints:
        - precompute_freqs_cis(head_dim, max_seq_len, theta, scale_factor, device=device)
          is cos + i sin.
        - .real and .imag are views of a complex tensor: .contiguous() makes them tables
          of their own.
    """
    raise NotImplementedError("not started: implement rope_tables in exercises/ex18_static_decode.py (exercise 18)")


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each adjacent pair (2k, 2k+1) of every head by its position's angle, in real arithmetic.

    Args:
        x: [seq, n_heads, head_dim] queries or keys.
        cos: [seq, head_dim // 2], the rows of the positions of x.
        sin: [seq, head_dim // 2].

    Returns:
        [seq, n_heads, head_dim] in x's dtype, what exercise 6's apply_rope gives.

    Hints:
        - Compute in float32: even, odd = x.float()[..., 0::2], x.float()[..., 1::2].
        - cos[:, None, :] broadcasts over the heads.
        - torch.stack([...], dim=-1).flatten(-2) interleaves the pairs back.
    """
    raise NotImplementedError("not started: implement apply_rotary in exercises/ex18_static_decode.py (exercise 18)")


def attention_mask(input_pos: torch.Tensor, max_seq_len: int) -> torch.Tensor:
    """0 where the query at input_pos[i] may look (cache positions up to its own), -inf elsewhere.

    Args:
        input_pos: [seq] int64, the positions of the queries.
        max_seq_len: positions of the cache.

    Returns:
        [seq, max_seq_len] float32 on input_pos's device.

    Hints:
        - torch.arange(max_seq_len, device=input_pos.device)[None, :] <= input_pos[:, None]
          is True where a query may look.
        - masked_fill(~visible, float("-inf")) on zeros of that shape.
    """
    raise NotImplementedError(
        "not started: implement attention_mask in exercises/ex18_static_decode.py (exercise 18)")


def forward(
    tokens: torch.Tensor, input_pos: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs,
    cache: StaticCache, rope: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """Logits in float32 for tokens at positions input_pos, attending over the whole static cache.

    Args:
        tokens: [seq] token ids.
        input_pos: [seq] int64, their positions.
        weights: Meta's state dict.
        args: the ModelArgs.
        cache: a StaticCache (yours, or the kit's in the tests).
        rope: (cos, sin) of rope_tables for the cache's max_seq_len positions.

    Returns:
        [seq, vocab_size] float32 logits, those of exercise 11's forward.

    Hints:
        - mask = attention_mask(input_pos, cos.shape[0]); cos, sin = cos[input_pos],
          sin[input_pos].
        - Per layer: rms_norm, project_qkv, apply_rotary on q and k,
          keys, values = cache.update(layer_id, input_pos, k, v), then
          grouped_query_attention(q, keys, values, mask) and wo; rms_norm and
          feed_forward; two residuals.
        - Then the final rms_norm and linear(h, weights["output.weight"]).float().
    """
    raise NotImplementedError("not started: implement forward in exercises/ex18_static_decode.py (exercise 18)")


def decode_step(
    token: torch.Tensor, input_pos: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs, cache: StaticCache,
    rope: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token through the model at position input_pos; the greedy next token and the logits, on the device.

    Args:
        token: [1] int64, the token just chosen.
        input_pos: [1] int64, its position.
        weights, args, cache, rope: as forward takes them.

    Returns:
        (next_token, logits): next_token [1] int64, the argmax; logits [vocab_size]
        float32. Both tensors on the device: nothing is read on the host.

    Hints:
        - forward(token, input_pos, ...)[-1] is [vocab_size].
        - logits.argmax(-1, keepdim=True) keeps the token a tensor [1].
    """
    raise NotImplementedError("not started: implement decode_step in exercises/ex18_static_decode.py (exercise 18)")


def compile_step(step: Callable, device) -> Callable:
    """step compiled whole: with CUDA graphs on a GPU (mode "reduce-overhead"), in the default mode elsewhere.

    Args:
        step: the function to compile (decode_step).
        device: where it will run: "cpu", "cuda", a torch.device...

    Returns:
        What torch.compile returns: a function that traces step on its first call.

    Hints:
        - torch.device(device).type is "cuda" on a GPU.
        - fullgraph=True in both cases.
    """
    raise NotImplementedError("not started: implement compile_step in exercises/ex18_static_decode.py (exercise 18)")


def generate(
    prompt_ids: list[int], weights: dict[str, torch.Tensor], args: ModelArgs, max_new_tokens: int, stop_tokens=(),
    max_seq_len: int | None = None
) -> list[tuple[int, torch.Tensor]]:
    """Prefill, then max_new_tokens - 1 compiled decode steps with every token kept on the device; one host sync at
    the end.

    Args:
        prompt_ids: the encoded prompt.
        weights: Meta's state dict.
        args: the ModelArgs.
        max_new_tokens: tokens to choose (the prefill chooses the first).
        stop_tokens: ids that end the answer; the first one and all after it are dropped.
        max_seq_len: positions of the cache; None for len(prompt_ids) + max_new_tokens.

    Returns:
        The (token_id, logits) pairs of exercise 12's generate: Python ints and
        [vocab_size] float32 logits, up to the first stop token. An empty list when
        max_new_tokens is 0.

    Hints:
        - device and dtype of weights["tok_embeddings.weight"]; one StaticCache and one
          rope_tables; torch._dynamo.mark_static_address on every weight and table;
          step = compile_step(decode_step, device).
        - Prefill with forward at torch.arange(len(prompt_ids)); the first token is its last
          row's argmax, kept as a tensor; input_pos = the last position + 1, a tensor [1].
        - In the loop: step, clone its outputs, input_pos += 1. After it:
          torch.cat(tokens).tolist(), once.
    """
    raise NotImplementedError("not started: implement generate in exercises/ex18_static_decode.py (exercise 18)")
