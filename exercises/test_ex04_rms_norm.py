"""Exercise 4 graded tests: RMSNorm. Run: pytest exercises/ -k ex04"""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import expect_close, randn


@pytest.mark.goldens("rms_norm")
def test_rms_norm(impl, golden):
    golden.check(impl.rms_norm)


@given(seed=st.integers(0, 2**31), scale=st.floats(0.5, 100.0))
def test_rms_norm_is_scale_invariant(impl, seed, scale):
    """RMSNorm(c x) = RMSNorm(x) for c > 0 (exactly so with eps = 0), and with weight 1 every row has rms 1."""
    x = randn(seed, 5, 64)
    out = impl.rms_norm(x * scale, torch.ones(64), 0.0)
    expect_close("rms of each row", out.pow(2).mean(-1).sqrt(), torch.ones(5),
                 why="with weight 1, every row has root mean square 1")
    expect_close("rms_norm(c x)", out, impl.rms_norm(x, torch.ones(64), 0.0),
                 why=f"rms_norm(x * {scale:g}) should equal rms_norm(x)")


@given(seed=st.integers(0, 2**31))
def test_matches_the_formula_in_float32(impl, seed):
    """out = x / sqrt(mean(x^2) + eps) * weight, the mean over the last dimension."""
    x, weight = randn(seed, 3, 16), randn(seed + 1, 16)
    expected = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight
    expect_close("rms_norm(x, weight, 1e-5)", impl.rms_norm(x, weight, 1e-5), expected)


def test_bfloat16_in_bfloat16_out(impl):
    x = randn(0, 4, 32, dtype=torch.bfloat16)
    out = impl.rms_norm(x, torch.ones(32, dtype=torch.bfloat16), 1e-5)
    expect_close("rms_norm in bf16", out,
                 (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5)).bfloat16())
