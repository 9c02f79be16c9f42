"""repeat_kv by expand and reshape (no copy until the reshape); the heads merged back with flatten."""

from solutions.ex08_multi_head_attention import attention


def repeat_kv(x, n_rep):
    seqlen, n_kv_heads, head_dim = x.shape
    return x[:, :, None, :].expand(seqlen, n_kv_heads, n_rep, head_dim).reshape(seqlen, n_kv_heads * n_rep, head_dim)


def grouped_query_attention(q, k, v, mask):
    n_rep = q.shape[1] // k.shape[1]
    keys, values = repeat_kv(k, n_rep).transpose(0, 1), repeat_kv(v, n_rep).transpose(0, 1)
    out = attention(q.transpose(0, 1), keys, values, mask)
    return out.transpose(0, 1).flatten(1)
