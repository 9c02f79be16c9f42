"""Exercise 5 graded tests: queries, keys and values. Run: pytest exercises/ -k ex05"""

import pytest
from hypothesis import given, strategies as st

from grader.testing import expect_close, expect_equal, randn


@pytest.mark.goldens("linear")
def test_linear(impl, golden):
    golden.check(impl.linear)


@pytest.mark.goldens("project_qkv")
def test_project_qkv(impl, golden):
    golden.check(impl.project_qkv)


@given(seed=st.integers(0, 2**31), n_in=st.integers(1, 16), n_out=st.integers(1, 16), seqlen=st.integers(1, 8))
def test_linear_is_x_times_w_transposed(impl, seed, n_in, n_out, seqlen):
    x, w = randn(seed, seqlen, n_in), randn(seed + 1, n_out, n_in)
    expect_close("linear(x, w)", impl.linear(x, w), x @ w.T, why="weights are [out_features, in_features]: y = x W^T")


@given(seed=st.integers(0, 2**31), n_kv_heads=st.sampled_from([1, 2, 4]), n_rep=st.sampled_from([1, 2, 3]))
def test_head_h_uses_rows_h_times_head_dim(impl, seed, n_kv_heads, n_rep):
    """Head h of q is x projected by rows [h*head_dim, (h+1)*head_dim) of wq; the same for k and v."""
    head_dim, dim, seqlen = 4, 16, 5
    n_heads = n_kv_heads * n_rep
    x = randn(seed, seqlen, dim)
    wq, wk, wv = (randn(seed + 1, n_heads * head_dim, dim), randn(seed + 2, n_kv_heads * head_dim, dim),
                  randn(seed + 3, n_kv_heads * head_dim, dim))
    q, k, v = impl.project_qkv(x, wq, wk, wv, n_heads, n_kv_heads)
    expect_equal("q.shape", tuple(q.shape), (seqlen, n_heads, head_dim))
    expect_equal("k.shape", tuple(k.shape), (seqlen, n_kv_heads, head_dim))
    for h in range(n_heads):
        expect_close(f"q[:, {h}]", q[:, h], x @ wq[h * head_dim:(h + 1) * head_dim].T)
    for h in range(n_kv_heads):
        expect_close(f"k[:, {h}]", k[:, h], x @ wk[h * head_dim:(h + 1) * head_dim].T)
        expect_close(f"v[:, {h}]", v[:, h], x @ wv[h * head_dim:(h + 1) * head_dim].T)
