"""Exercise 16 graded tests: int8 weights. Run: pytest exercises/ -k ex16"""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import GradeFailure, expect_close, expect_equal, randn
from solutions.ex16_int8 import Int8Weight


@pytest.mark.goldens("quantize")
def test_quantize(impl, golden):
    golden.check(impl.quantize)


@pytest.mark.goldens("dequantize")
def test_dequantize(impl, golden):
    golden.check(impl.dequantize)


@pytest.mark.goldens("int8_linear")
def test_int8_linear(impl, golden):
    golden.check(impl.int8_linear)


@pytest.mark.goldens("is_quantized")
def test_is_quantized(impl, golden):
    golden.check(impl.is_quantized)


@pytest.mark.goldens("forward")
def test_forward(impl, golden):
    golden.check(impl.forward)


def _parts(impl, weight):
    """quantize's (q, scale), checked for type, dtype and shape."""
    got = impl.quantize(weight)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise GradeFailure(f"quantize should return Int8Weight(q, scale), got {type(got).__name__}")
    q, scale = got
    rows, cols = weight.shape
    for name, t, dtype, shape in (("q", q, torch.int8, (rows, cols)), ("scale", scale, torch.float32, (rows,))):
        if not isinstance(t, torch.Tensor) or t.dtype != dtype or tuple(t.shape) != shape:
            what = f"{t.dtype} {list(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise GradeFailure(f"quantize: {name} is {what}, expected "
                               f"{str(dtype).removeprefix('torch.')} {list(shape)}")
    return q, scale


@given(seed=st.integers(0, 2**31), rows=st.integers(1, 6), cols=st.integers(1, 40), spread=st.floats(1e-6, 1e3),
       zero_row=st.integers(-1, 5))
def test_dequantized_weights_are_within_half_a_step(impl, seed, rows, cols, spread, zero_row):
    """|q * scale - w| <= scale / 2 for every weight; every scale is positive; a row of zeros gives q = 0, no NaN."""
    w = randn(seed, rows, cols) * spread * (1 + 30 * (randn(seed + 1, rows, 1) > 1.5))  # some rows with outliers
    if 0 <= zero_row < rows:
        w[zero_row] = 0
    q, scale = _parts(impl, w)
    if not bool(torch.isfinite(scale).all() and (scale > 0).all()):
        raise GradeFailure(f"quantize: every scale must be positive and finite, got {scale.tolist()} "
                           "(a row of zeros has max 0: give it a small positive scale)")
    expect_equal("largest |q|", int(q.abs().max()) <= 127, True, why="q stays within -127..127")
    error = (q.float() * scale[:, None] - w).abs()  # [rows, cols]
    worst = (error / scale[:, None]).max()
    if worst > 0.5 + 1e-4:
        raise GradeFailure(f"quantize: a weight is {float(worst):.3f} steps from its int8 value, more than half a "
                           "step: round to the nearest integer (torch.round) and use scale = max |row| / 127")
    if 0 <= zero_row < rows:
        expect_equal("q of the all-zero row", q[zero_row].abs().sum().item(), 0)


@given(seed=st.integers(0, 2**31), rows=st.integers(2, 40), split=st.integers(1, 39))
def test_a_block_of_rows_quantizes_as_in_the_whole_matrix(impl, seed, rows, split):
    """Per output channel: rows are quantized alone, so the kit may quantize a big matrix a block of rows at a time."""
    w, split = randn(seed, rows, 24), min(split, rows - 1)
    q, scale = _parts(impl, w)
    for start, end in ((0, split), (split, rows)):
        bq, bscale = _parts(impl, w[start:end])
        expect_equal("q of a block of rows", torch.equal(bq, q[start:end]), True,
                     why="quantizing rows alone must give the same q as quantizing the whole matrix: one scale per row")
        expect_close("scale of a block of rows", bscale, scale[start:end])


@given(seed=st.integers(0, 2**31), seqlen=st.integers(1, 5), n_in=st.integers(1, 40), n_out=st.integers(1, 24))
def test_int8_linear_is_the_product_with_the_dequantized_weights(impl, seed, seqlen, n_in, n_out):
    x = randn(seed, seqlen, n_in)
    q = torch.randint(-127, 128, (n_out, n_in), dtype=torch.int8, generator=torch.Generator().manual_seed(seed))
    scale = randn(seed + 1, n_out).abs() / 100 + 1e-3
    expect_close("int8_linear(x, w)", impl.int8_linear(x, Int8Weight(q, scale)), x @ (q.float() * scale[:, None]).T,
                 why="int8_linear(x, w) = x @ (q * scale[:, None]).T")


def test_int8_linear_keeps_bfloat16(impl):
    x = randn(0, 3, 32, dtype=torch.bfloat16)
    q = torch.randint(-127, 128, (16, 32), dtype=torch.int8, generator=torch.Generator().manual_seed(0))
    scale = torch.rand(16, generator=torch.Generator().manual_seed(1)) / 50
    expected = (x.float() @ (q.float() * scale[:, None]).T).bfloat16()
    expect_close("int8_linear in bf16", impl.int8_linear(x, Int8Weight(q, scale)), expected)
