"""self_attention ignores the cache: it neither writes this chunk's keys and values nor reads the earlier ones."""

from solutions.ex08_multi_head_attention import apply_rope, grouped_query_attention, linear, project_qkv

FAILURE_SAYS = "cache was not updated"


def self_attention(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    p = f"layers.{layer_id}.attention."
    q, k, v = project_qkv(x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"],
                          args.n_heads, args.n_kv_heads)
    q, k = apply_rope(q, freqs_cis), apply_rope(k, freqs_cis)
    return linear(grouped_query_attention(q, k, v, mask), weights[p + "wo.weight"])
