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
    """RMSNorm(c x) = RMSNorm(x) for c > 0 (exactly so with eps = 0)."""
    x, weight = randn(seed, 5, 64), randn(seed + 1, 64)
    expect_close("rms_norm(c x)", impl.rms_norm(x * scale, weight, 0.0), impl.rms_norm(x, weight, 0.0),
                 why=f"rms_norm(x * {scale:g}) should equal rms_norm(x)")


@given(seed=st.integers(0, 2**31))
def test_unit_weight_gives_unit_rms(impl, seed):
    x = randn(seed, 3, 128) * 7
    out = impl.rms_norm(x, torch.ones(128), 1e-5)
    expect_close("rms of each row", out.pow(2).mean(-1).sqrt(), torch.ones(3), why="with weight 1, every row has root mean square 1")


def test_bfloat16_in_bfloat16_out(impl):
    x = randn(0, 4, 32, dtype=torch.bfloat16)
    out = impl.rms_norm(x, torch.ones(32, dtype=torch.bfloat16), 1e-5)
    expect_close("rms_norm in bf16", out, (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5)).bfloat16())
