"""Exercise 3 graded tests: embeddings. Run: pytest exercises/ -k ex03"""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import expect_equal, randn


@pytest.mark.goldens("embed")
def test_embed(impl, golden):
    golden.check(impl.embed)


@given(seed=st.integers(0, 2**31), ids=st.lists(st.integers(0, 99), min_size=1, max_size=20))
def test_each_row_is_the_table_row_of_its_token(impl, seed, ids):
    table = randn(seed, 100, 8, dtype=torch.bfloat16)
    out = impl.embed(torch.tensor(ids), table)
    expect_equal("shape", tuple(out.shape), (len(ids), 8))
    for i, token in enumerate(ids):
        if not torch.equal(out[i], table[token]):
            expect_equal(f"row {i} (token {token})", out[i].tolist(), table[token].tolist())


def test_a_single_token(impl):
    table = randn(0, 10, 4)
    expect_equal("embed([7])", impl.embed(torch.tensor([7]), table).tolist(), table[7:8].tolist())
