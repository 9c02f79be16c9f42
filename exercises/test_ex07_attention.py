"""Exercise 7 graded tests: attention for one head. Run: pytest exercises/ -k ex07"""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import expect_close, randn
from solutions.ex07_attention import causal_mask


@pytest.mark.goldens("causal_mask")
def test_causal_mask(impl, golden):
    golden.check(impl.causal_mask)


@pytest.mark.goldens("attention")
def test_attention(impl, golden):
    golden.check(impl.attention)


@given(seqlen=st.integers(1, 12), start_pos=st.integers(0, 12))
def test_mask_hides_exactly_the_future(impl, seqlen, start_pos):
    """Row i is absolute position start_pos + i: it may see keys 0 .. start_pos + i (0.0) and nothing after (-inf)."""
    mask = impl.causal_mask(seqlen, start_pos)
    i, j = torch.meshgrid(torch.arange(seqlen), torch.arange(start_pos + seqlen), indexing="ij")
    expected = torch.zeros(seqlen, start_pos + seqlen).masked_fill(j > start_pos + i, float("-inf"))
    expect_close(f"causal_mask({seqlen}, {start_pos})", mask, expected, why="0.0 where j <= start_pos + i, -inf after")


@given(seed=st.integers(0, 2**31), seqlen=st.integers(2, 10), position=st.integers(0, 8))
def test_causal_attention_ignores_future_tokens(impl, seed, seqlen, position):
    """Changing keys and values after position i must not change your output rows 0..i (checked between your own two
    outputs, not against the reference); and row 0, which may see only position 0, is v[0]."""
    position = min(position, seqlen - 2)
    q, k, v = randn(seed, seqlen, 8), randn(seed + 1, seqlen, 8), randn(seed + 2, seqlen, 8)
    k2, v2 = k.clone(), v.clone()
    k2[position + 1:] = randn(seed + 3, seqlen - position - 1, 8)
    v2[position + 1:] = randn(seed + 4, seqlen - position - 1, 8)
    mask = causal_mask(seqlen)
    before, after = impl.attention(q, k, v, mask), impl.attention(q, k2, v2, mask)
    expect_close(f"your rows 0..{position} with keys and values after {position} changed", after[:position + 1],
                 before[:position + 1],
                 why=f"keys and values after position {position} were changed; your rows up to it must not move")
    expect_close("your row 0", before[0], v[0], why="row 0 may see position 0 only, so all its weight is on v[0]")


@given(seed=st.integers(0, 2**31), seqlen=st.integers(1, 10))
def test_attention_weights_sum_to_one(impl, seed, seqlen):
    """With every value equal to 1, each output is a weighted average of ones: exactly 1."""
    q, k = randn(seed, seqlen, 8), randn(seed + 1, seqlen, 8)
    out = impl.attention(q, k, torch.ones(seqlen, 8), impl.causal_mask(seqlen))
    expect_close("attention(q, k, ones)", out, torch.ones(seqlen, 8), why="softmax weights over the keys must sum to 1")
