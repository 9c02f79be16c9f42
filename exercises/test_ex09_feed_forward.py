"""Exercise 9 graded tests: the SwiGLU feed-forward network. Run: pytest exercises/ -k ex09"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from grader.testing import expect_close, randn


@pytest.mark.goldens("feed_forward")
def test_feed_forward(impl, golden):
    golden.check(impl.feed_forward)


@given(seed=st.integers(0, 2**31), seqlen=st.integers(1, 6), hidden=st.integers(1, 24))
def test_feed_forward_is_w2_of_silu_w1_times_w3(impl, seed, seqlen, hidden):
    x, w1, w2, w3 = randn(seed, seqlen, 8), randn(seed + 1, hidden, 8), randn(seed + 2, 8, hidden), randn(seed + 3, hidden, 8)
    expect_close("feed_forward", impl.feed_forward(x, w1, w2, w3), (F.silu(x @ w1.T) * (x @ w3.T)) @ w2.T,
                 why="out = w2( silu(w1 x) * (w3 x) )")


def test_zero_input_gives_zero(impl):
    """silu(0) * 0 = 0: a zero vector passes through as zero (no biases in Llama)."""
    w1, w2, w3 = randn(1, 16, 8), randn(2, 8, 16), randn(3, 16, 8)
    expect_close("feed_forward(0)", impl.feed_forward(torch.zeros(3, 8), w1, w2, w3), torch.zeros(3, 8))
