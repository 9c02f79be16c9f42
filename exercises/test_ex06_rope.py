"""Exercise 6 graded tests: RoPE. Run: pytest exercises/ -k ex06"""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import expect_close, expect_equal, randn
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
    """docs/facts.md §0: head_dim 128, theta 500000 -> 1.0000, 0.81462, 0.66360, 0.54058, 0.44037, 0.35873, ..."""
    freqs = impl.precompute_freqs_cis(128, 2, 500000.0)[1].angle()  # the angle at position 1 is the frequency
    published = torch.tensor([1.0, 0.81462, 0.66360, 0.54058, 0.44037, 0.35873])
    expect_close("frequencies 0..5", freqs[:6], published, why="f_i = theta^(-2i/head_dim), as published")


def test_published_scaled_lowest_frequency(impl):
    """docs/facts.md §2.2: f_63 = 2.45514e-06 becomes 3.06893e-07 with factor 8 and 7.67231e-08 with factor 32."""
    for factor, value in ((8.0, 3.06893e-07), (32.0, 7.67231e-08)):
        f63 = impl.precompute_freqs_cis(128, 2, 500000.0, factor)[1].angle()[63:]
        expect_close(f"f_63 scaled by factor {factor:g}", f63, torch.tensor([value]))


# The properties below are checked on your own outputs alone: a RoPE in another layout has them too (its golden
# tests above name the layout). Each also checks that positions after 0 do turn, which no rotation-free code passes.

@given(seed=st.integers(0, 2**31), seqlen=st.integers(2, 12))
def test_rope_preserves_norms(impl, seed, seqlen):
    """A rotation keeps the length of every head vector; position 0 turns by angle 0, later positions do turn."""
    x = randn(seed, seqlen, 3, 16)
    freqs_cis = reference.precompute_freqs_cis(16, seqlen, 500000.0)
    out = impl.apply_rope(x, freqs_cis)
    expect_close("norms after your RoPE", out.norm(dim=-1), x.norm(dim=-1),
                 why="a rotation must not change vector lengths")
    expect_close("position 0 after your RoPE", out[0], x[0],
                 why="position 0 turns by angle 0: it comes out as it went in")
    moved = (out[1:] - x[1:]).abs().amax()
    expect_equal("your RoPE moves positions 1 and later", bool(moved > 1e-3), True,
                 why=f"positions 1..{seqlen - 1} must be rotated, but they changed by at most {float(moved):.3g}")


@given(seed=st.integers(0, 2**31), seqlen=st.integers(2, 12))
def test_pair_0_turns_by_t_radians(impl, seed, seqlen):
    """Meta's layout pairs adjacent elements: (x0, x1) is pair 0, whose frequency is theta^0 = 1, so position t turns
    it by t radians (the formula of the chapter, not a property: RoPE on halves fails it)."""
    x = randn(seed, seqlen, 3, 16)
    out = impl.apply_rope(x, reference.precompute_freqs_cis(16, seqlen, 500000.0))
    t = torch.arange(seqlen, dtype=torch.float32)[:, None]  # [seq, 1]
    pair0 = torch.stack([x[..., 0] * t.cos() - x[..., 1] * t.sin(), x[..., 0] * t.sin() + x[..., 1] * t.cos()], dim=-1)
    expect_close("elements (0, 1) after RoPE", out[..., :2], pair0,
                 why="the pair (x0, x1) at position t is rotated by t radians")


@given(seed=st.integers(0, 2**31), m=st.integers(0, 40), n=st.integers(0, 40), shift=st.integers(1, 40))
def test_q_dot_k_depends_only_on_the_offset(impl, seed, m, n, shift):
    """With your apply_rope: <rope(q, m), rope(k, n)> = <rope(q, m + s), rope(k, n + s)> (attention sees relative
    positions), and moving k alone changes it (RoPE does encode the offset)."""
    q, k = randn(seed, 1, 1, 16), randn(seed + 1, 1, 1, 16)
    freqs_cis = reference.precompute_freqs_cis(16, 100, 10000.0)

    def dot(a, b):
        return (impl.apply_rope(q, freqs_cis[a:a + 1]) * impl.apply_rope(k, freqs_cis[b:b + 1])).sum().reshape(1)

    at_mn = dot(m, n)
    expect_close(f"your q.k at positions ({m + shift}, {n + shift})", dot(m + shift, n + shift), at_mn,
                 tol="float32 layers",
                 why=f"positions ({m}, {n}) and ({m + shift}, {n + shift}) have the same offset, so your q.k must be "
                     f"the same at both (it is {float(at_mn):.6g} at ({m}, {n}))")
    moved = dot(m, n + shift)
    expect_equal(f"your q.k changes when only k moves from {n} to {n + shift}",
                 bool((moved - at_mn).abs() > 1e-4 * at_mn.abs().clamp_min(1)), True,
                 why=f"your q.k is {float(at_mn):.6g} at ({m}, {n}) and {float(moved):.6g} at ({m}, {n + shift}): "
                     "RoPE must rotate by position")
