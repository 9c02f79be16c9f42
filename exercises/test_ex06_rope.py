"""Exercise 6 graded tests: RoPE. Run: pytest exercises/ -k ex06"""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.engine.testing import expect_close, randn
from solutions import ex06_rope as reference


@pytest.mark.goldens("apply_scaling")
def test_apply_scaling(impl, golden):
    golden.check(impl.apply_scaling)


@pytest.mark.goldens("precompute_freqs_cis")
def test_precompute_freqs_cis(impl, golden):
    golden.check(impl.precompute_freqs_cis)


@pytest.mark.goldens("apply_rope")
def test_apply_rope(impl, golden):
    golden.check(impl.apply_rope)


def test_published_base_frequencies(impl):
    """FACTS section 0: head_dim 128, theta 500000 -> 1.0000, 0.81462, 0.66360, 0.54058, 0.44037, 0.35873, ..."""
    freqs = impl.precompute_freqs_cis(128, 2, 500000.0)[1].angle()  # the angle at position 1 is the frequency
    published = torch.tensor([1.0, 0.81462, 0.66360, 0.54058, 0.44037, 0.35873])
    expect_close("frequencies 0..5", freqs[:6], published, why="f_i = theta^(-2i/head_dim), as published")


def test_published_scaled_lowest_frequency(impl):
    """FACTS section 2.2: f_63 = 2.45514e-06 becomes 3.06893e-07 with factor 8 and 7.67231e-08 with factor 32."""
    for factor, value in ((8.0, 3.06893e-07), (32.0, 7.67231e-08)):
        f63 = impl.precompute_freqs_cis(128, 2, 500000.0, factor)[1].angle()[63:]
        expect_close(f"f_63 scaled by factor {factor:g}", f63, torch.tensor([value]))


@given(seed=st.integers(0, 2**31), seqlen=st.integers(1, 12))
def test_rope_preserves_norms(impl, seed, seqlen):
    """A rotation keeps the length of every pair, hence of every head vector; pair 0 (frequency 1) turns by t radians."""
    x = randn(seed, seqlen, 3, 16)
    freqs_cis = impl.precompute_freqs_cis(16, seqlen, 500000.0)
    out = impl.apply_rope(x, freqs_cis)
    expect_close("norms after RoPE", out.norm(dim=-1), x.norm(dim=-1), why="RoPE must not change vector lengths")
    t = torch.arange(seqlen, dtype=torch.float32)[:, None]  # [seq, 1]: pair 0 has frequency theta^0 = 1
    pair0 = torch.stack([x[..., 0] * t.cos() - x[..., 1] * t.sin(), x[..., 0] * t.sin() + x[..., 1] * t.cos()], dim=-1)
    expect_close("elements (0, 1) after RoPE", out[..., :2], pair0, why="the pair (x0, x1) at position t is rotated by t radians")


@given(seed=st.integers(0, 2**31), m=st.integers(0, 40), n=st.integers(0, 40), shift=st.integers(1, 40))
def test_q_dot_k_depends_only_on_the_offset(impl, seed, m, n, shift):
    """<rope(q, m), rope(k, n)> = <rope(q, m + s), rope(k, n + s)>: attention sees relative positions."""
    q, k = randn(seed, 1, 1, 16), randn(seed + 1, 1, 1, 16)
    freqs_cis = reference.precompute_freqs_cis(16, 100, 10000.0)
    dot = lambda rope, a, b: (rope(q, freqs_cis[a:a + 1]) * rope(k, freqs_cis[b:b + 1])).sum().reshape(1)  # noqa: E731
    expect_close("q.k after shifting both positions", dot(impl.apply_rope, m + shift, n + shift), dot(reference.apply_rope, m, n),
                 tol="float32 layers", why=f"positions ({m}, {n}) and ({m + shift}, {n + shift}) have the same offset")
