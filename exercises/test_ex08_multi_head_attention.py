"""Exercise 8 graded tests: grouped-query multi-head attention. Run: pytest exercises/ -k ex08"""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import expect_close, expect_equal, randn
from solutions.ex07_attention import attention, causal_mask


@pytest.mark.goldens("repeat_kv")
def test_repeat_kv(impl, golden):
    golden.check(impl.repeat_kv)


@pytest.mark.goldens("grouped_query_attention")
def test_grouped_query_attention(impl, golden):
    golden.check(impl.grouped_query_attention)


@pytest.mark.goldens("self_attention")
def test_self_attention(impl, golden):
    golden.check(impl.self_attention)


@given(seed=st.integers(0, 2**31), n_kv_heads=st.integers(1, 4), n_rep=st.integers(1, 4))
def test_query_head_h_reads_kv_head_h_div_n_rep(impl, seed, n_kv_heads, n_rep):
    x = randn(seed, 5, n_kv_heads, 4)
    out = impl.repeat_kv(x, n_rep)
    expect_equal("repeat_kv(x, n_rep).shape", tuple(out.shape), (5, n_kv_heads * n_rep, 4))
    for h in range(n_kv_heads * n_rep):
        if not torch.equal(out[:, h], x[:, h // n_rep]):
            expect_equal(f"head {h} comes from kv head", "another head", f"kv head {h // n_rep}")


@given(seed=st.integers(0, 2**31), n_heads=st.integers(1, 4), seqlen=st.integers(1, 8))
def test_with_as_many_kv_heads_as_query_heads_it_is_plain_multi_head_attention(impl, seed, n_heads, seqlen):
    """n_kv_heads == n_heads: each head attends on its own, and the heads are concatenated."""
    q, k, v = randn(seed, seqlen, n_heads, 8), randn(seed + 1, seqlen, n_heads, 8), randn(seed + 2, seqlen, n_heads, 8)
    mask = causal_mask(seqlen)
    # [seq, n_heads * 8]
    expected = torch.cat([attention(q[:, h], k[:, h], v[:, h], mask) for h in range(n_heads)], dim=-1)
    expect_close("grouped_query_attention", impl.grouped_query_attention(q, k, v, mask), expected)
