"""K and V repeated to every query head before the cache write: the cache is made for n_kv_heads heads."""

from solutions.ex08_multi_head_attention import apply_rope, attention, linear, project_qkv, repeat_kv

FAILURE_SAYS = "update the cache before repeat_kv"


def self_attention(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    p = f"layers.{layer_id}.attention."
    q, k, v = project_qkv(x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"],
                          args.n_heads, args.n_kv_heads)
    q, k = apply_rope(q, freqs_cis), apply_rope(k, freqs_cis)
    k, v = repeat_kv(k, args.n_rep), repeat_kv(v, args.n_rep)
    if cache is not None:
        k, v = cache.update(layer_id, start_pos, k, v)
    out = attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), mask).transpose(0, 1)
    return linear(out.reshape(x.shape[0], -1), weights[p + "wo.weight"])
