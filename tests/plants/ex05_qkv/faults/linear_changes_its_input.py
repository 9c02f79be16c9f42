"""linear multiplies its input x by 1 in place (it changes the caller's tensor); project_qkv is not started."""


def linear(x, weight):
    x.mul_(1.0)
    return x @ weight.T


def project_qkv(x, wq, wk, wv, n_heads, n_kv_heads):
    raise NotImplementedError("not started: implement project_qkv in exercises/ex05_qkv.py (exercise 5)")
