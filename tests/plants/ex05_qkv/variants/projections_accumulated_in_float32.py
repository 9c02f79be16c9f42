"""The projections multiplied in float32 and rounded once to the input's dtype; the heads split with view."""


def linear(x, weight):
    return (x.float() @ weight.float().T).to(x.dtype)


def project_qkv(x, wq, wk, wv, n_heads, n_kv_heads):
    head_dim = wq.shape[0] // n_heads
    return tuple(linear(x, w).view(x.shape[0], n, head_dim)
                 for w, n in ((wq, n_heads), (wk, n_kv_heads), (wv, n_kv_heads)))
