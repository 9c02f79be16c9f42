"""The keys written into the cache before RoPE, and the cached keys of earlier positions rotated again by this
chunk's angles."""

from solutions.ex08_multi_head_attention import apply_rope, grouped_query_attention, linear, project_qkv

FAILURE_SAYS = "the cache holds keys without RoPE"


def self_attention(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    p = f"layers.{layer_id}.attention."
    q, k, v = project_qkv(x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"],
                          args.n_heads, args.n_kv_heads)
    if cache is not None:
        k, v = cache.update(layer_id, start_pos, k, v)
    q = apply_rope(q, freqs_cis)
    k = apply_rope(k, freqs_cis)
    return linear(grouped_query_attention(q, k, v, mask), weights[p + "wo.weight"])
