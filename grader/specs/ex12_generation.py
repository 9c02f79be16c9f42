"""Exercise 12, the KV cache and generation: golden calls and named mistakes."""

import torch

from solutions import ex12_generation

from ..engine.calls import Call
from .checked_cache import drive_generate
from .ex11_forward import generation_inputs, new_tokens
from .inputs import GENERATION_PROMPT_TOKENS
from .spec import Spec, driver

spec = Spec("ex12_generation")


@spec.cases
def calls(model, acts) -> list[Call]:
    """The cache over a prefill, a step and a chunk; generate from each short prompt, once with a stop token met at
    the fourth step, and (on the tiny models) in bf16, where the cache's dtype must follow the weights'."""
    m, args = spec.module, model.checkpoint.args
    a0 = next(iter(acts.values()))
    def cache(a):
        return {"n_layers": args.n_layers, "max_seq_len": len(a.ids) + 4, "n_kv_heads": args.n_kv_heads,
                "head_dim": args.head_dim, "dtype": str(a.k_rot.dtype).removeprefix("torch."), "k_prefill": a.k_rot,
                "v_prefill": a.v, "k_steps": a.k_rot[-4:] * 0.5, "v_steps": a.v[-4:] * 0.5}

    out = [Call(m, "KVCache", name, cache(a), driver=drive_kv_cache) for name, a in acts.items()]
    n_new = new_tokens(model)
    out += [Call(m, "generate", name, generation_inputs(model, a.ids, n_new), tolerance="float32 layers",
                 driver=drive_generate) for name, a in acts.items() if len(a.ids) <= GENERATION_PROMPT_TOKENS]
    out += [Call(m, "generate", "stop_token", generation_inputs(model, a0.ids, n_new, a0.forced_stop),
                 tolerance="float32 layers", driver=drive_generate)]
    if model.is_tiny:
        out += [Call(m, "generate", "prompt42_bf16", generation_inputs(model, a0.ids, n_new, dtype=""),
                     tolerance="bf16 attention", driver=drive_generate)]
    return out


@driver
def drive_kv_cache(KVCache, n_layers, max_seq_len, n_kv_heads, head_dim, dtype, k_prefill, v_prefill, k_steps, v_steps):
    """Prefill layer n_layers - 1 with a prompt's keys and values, add one step, then a chunk of the rest; return
    what update gave each time."""
    cache = KVCache(n_layers, max_seq_len, n_kv_heads, head_dim, getattr(torch, dtype))
    layer, start = n_layers - 1, k_prefill.shape[0]
    k0, v0 = cache.update(layer, 0, k_prefill, v_prefill)
    k0, v0 = k0.clone(), v0.clone()  # the cache may hand out views of its buffers
    k1, v1 = cache.update(layer, start, k_steps[:1], v_steps[:1])
    k1, v1 = k1.clone(), v1.clone()
    k2, v2 = cache.update(layer, start + 1, k_steps[1:], v_steps[1:])
    return {"keys_after_prefill": k0, "values_after_prefill": v0, "keys_after_step": k1, "values_after_step": v1,
            "keys_after_chunk": k2, "values_after_chunk": v2}


@spec.mistake("KVCache", "cache_written_at_zero",
              en="the cache is written at position 0 every time: write the new keys and values at positions start_pos "
                 ".. start_pos + seq",
              zh="每次都从位置 0 写缓存：新的 key 和 value 应写在 start_pos .. start_pos + seq")
class KVCacheWrittenAtZero(ex12_generation.KVCache):
    def update(self, layer_id, start_pos, k, v):
        seqlen = k.shape[0]
        self.cache_k[layer_id][:seqlen] = k
        self.cache_v[layer_id][:seqlen] = v
        return self.cache_k[layer_id][: start_pos + seqlen], self.cache_v[layer_id][: start_pos + seqlen]
