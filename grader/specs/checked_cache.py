"""The cached path, driven the same way for every exercise that takes a KV cache: a cache that checks how the code
under test uses it, the drivers that feed a layer, a forward or a generator through it, and the checks of generate's
calls of forward."""

import torch

from solutions import ex07_attention, ex12_generation

from ..engine import impl as impls
from ..engine.calls import generation, logits_head
from ..engine.compare import GradeFailure
from ..i18n import say
from .spec import driver


class CheckedCache(ex12_generation.KVCache):
    """The reference KV cache, checking how the code under test calls it: with the K/V heads it holds, at the
    positions the chunk occupies, once for every layer."""

    def __init__(self, args, max_seq_len: int, dtype: torch.dtype, who: str):
        super().__init__(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype)
        self.n_kv_heads, self.who = args.n_kv_heads, who
        self.start, self.written = 0, set()

    def expect(self, start: int) -> None:
        """The next chunk starts at position start."""
        self.start, self.written = start, set()

    def update(self, layer_id, start_pos, k, v):
        if not isinstance(k, torch.Tensor) or k.dim() != 3 or k.shape[1] != self.n_kv_heads:
            shape = list(k.shape) if isinstance(k, torch.Tensor) else type(k).__name__
            raise GradeFailure(say("cache.keys_after_repeat_kv", who=self.who, shape=shape, n_kv_heads=self.n_kv_heads))
        if start_pos != self.start:
            raise GradeFailure(say("cache.start_pos_changed", who=self.who, layer_id=layer_id, start_pos=start_pos,
                                   first=self.start, last=self.start + k.shape[0] - 1))
        self.written.add(layer_id)
        return super().update(layer_id, start_pos, k, v)

    def check_written(self, layers, n: int) -> None:
        """Every layer in layers wrote this chunk of n tokens."""
        missing = [layer for layer in layers if layer not in self.written]
        if missing:
            attention = self.who in ("self_attention", "parallel_attention")
            hint = say("cache.write_in_attention" if attention else "cache.pass_it_on")
            raise GradeFailure(say("cache.not_written", who=self.who, layer=missing[0], first=self.start,
                                   last=self.start + n - 1, hint=hint))


def chunks_of(chunks):
    """(name, start, end) of each chunk, from (name, length) pairs."""
    start = 0
    for name, n in chunks:
        yield name, start, start + n
        start += n


@driver
def drive_layer_cached(layer, x, weights, layer_id, args, freqs_cis, chunks, cache_args=None):
    """self_attention or transformer_block over x in chunks through one cache: a prefill, decode steps of one
    token, then a chunk of several after the cached ones; the outputs of each. cache_args, if given, are the
    ModelArgs the cache holds heads for (one rank's, in exercise 17)."""
    cache = CheckedCache(cache_args or args, x.shape[0], x.dtype, layer.__name__)
    out = {}
    for name, start, end in chunks_of(chunks):
        n = end - start
        mask = ex07_attention.causal_mask(n, start) if n > 1 else None  # [n, start + n]
        cache.expect(start)
        out[name] = layer(x[start:end], weights, layer_id, args, freqs_cis[start:end], mask, cache, start)
        cache.check_written([layer_id], n)
    return out


@driver
def drive_forward_cached(forward, tokens, weights, args, chunks, cache_args=None):
    """forward over tokens in chunks through one cache; the first columns of each chunk's logits."""
    cache = CheckedCache(cache_args or args, tokens.shape[0], weights["tok_embeddings.weight"].dtype, forward.__name__)
    out = {}
    for name, start, end in chunks_of(chunks):
        cache.expect(start)
        logits = forward(tokens[start:end], weights, args, cache, start)
        cache.check_written(range(args.n_layers), end - start)
        out[name] = logits_head(logits, f"{forward.__name__} ({name})")["head"]
    return out


@driver
def drive_generation(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens):
    """Run a generator to the end; what is compared of its (token, logits) pairs."""
    steps = list(generate(prompt_ids, weights, args, max_new_tokens, stop_tokens))
    return generation(steps, generate.__name__, stop_tokens)


@driver
def drive_generate(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens, forward="forward",
                   n_kv_heads=None):
    """drive_generation, checking that every token goes through forward (by that name) once, through one cache made
    for n_kv_heads K/V heads (default args.n_kv_heads)."""
    with impls.spy(generate, forward) as calls, impls.spy(generate, "KVCache") as made:
        try:
            out = drive_generation(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens)
        finally:  # a cache of the wrong size also explains the error it causes
            check_cache_heads(made, n_kv_heads or args.n_kv_heads, generate.__name__)
    check_cache_use(calls)
    return out


def check_cache_heads(made: list[dict], n_kv_heads: int, who: str) -> None:
    """Every KVCache who made (its constructor's arguments) holds n_kv_heads K/V heads."""
    for c in made:
        if c.get("n_kv_heads") != n_kv_heads:
            raise GradeFailure(say("cache.wrong_kv_heads", who=who, made=c.get("n_kv_heads"), n_kv_heads=n_kv_heads))


def check_cache_use(calls: list[dict], who: str = "generate") -> None:
    """From generate's (or who's) calls of forward: one cache throughout, each call feeding only tokens not yet in
    it, at start_pos = the number already cached. (A generate that never calls forward is not judged here.)"""
    cached, cache = 0, None
    for i, c in enumerate(calls):
        n = len(c["tokens"]) if hasattr(c["tokens"], "__len__") else 1
        if c.get("cache") is None:
            raise GradeFailure(say("cache.forward_without_cache", who=who, call=i + 1))
        if cache is not None and c["cache"] is not cache:
            raise GradeFailure(say("cache.new_cache", who=who, call=i + 1))
        start = c.get("start_pos")
        if start != cached:
            raise GradeFailure(say("cache.refed", who=who, n=n, start=start, call=i + 1, cached=cached))
        cached, cache = cached + n, c["cache"]
