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
    x, w1, w2, w3 = (randn(seed, seqlen, 8), randn(seed + 1, hidden, 8), randn(seed + 2, 8, hidden),
                     randn(seed + 3, hidden, 8))
    expect_close("feed_forward", impl.feed_forward(x, w1, w2, w3), (F.silu(x @ w1.T) * (x @ w3.T)) @ w2.T,
                 why="out = w2( silu(w1 x) * (w3 x) )")


def test_bfloat16_in_bfloat16_out(impl):
    """In the model's dtype: bf16 activations and weights give a bf16 result."""
    x, w1, w2, w3 = (randn(i, *shape, dtype=torch.bfloat16)
                     for i, shape in enumerate([(3, 8), (16, 8), (8, 16), (16, 8)]))
    expected = ((F.silu(x.float() @ w1.float().T) * (x.float() @ w3.float().T)) @ w2.float().T).bfloat16()
    expect_close("feed_forward in bf16", impl.feed_forward(x, w1, w2, w3), expected, tol="bf16 layer")
