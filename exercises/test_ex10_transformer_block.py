"""Exercise 10 graded tests: the transformer block. Run: pytest exercises/ -k ex10"""

from collections import ChainMap

import pytest
import torch

from grader.testing import expect_close
from solutions.ex04_rms_norm import rms_norm
from solutions.ex09_feed_forward import feed_forward


@pytest.mark.goldens("transformer_block")
def test_transformer_block(impl, golden):
    golden.check(impl.transformer_block)


@pytest.mark.goldens("transformer_block")
def test_with_wo_zero_only_the_feed_forward_adds_to_x(impl, golden):
    """With wo = 0 attention adds nothing, so the block is x + feed_forward(rms_norm(x, ffn_norm))."""
    kwargs = golden.kwargs(golden.goldens[0])  # the first prompt, layer 0
    x, p, eps = kwargs["x"], f"layers.{kwargs['layer_id']}.", kwargs["args"].norm_eps
    wo_zero = {p + "attention.wo.weight": torch.zeros_like(kwargs["weights"][p + "attention.wo.weight"])}
    weights = ChainMap(wo_zero, kwargs["weights"])  # the model's weights with wo replaced, nothing copied
    expected = x + feed_forward(rms_norm(x, weights[p + "ffn_norm.weight"], eps),
                                *(weights[p + f"feed_forward.w{i}.weight"] for i in (1, 2, 3)))
    expect_close("transformer_block with wo = 0", impl.transformer_block(**{**kwargs, "weights": weights}), expected,
                 tol="float32 layers",
                 why="the block must add each sublayer's output to the un-normed stream: h = x + attention(norm(x)); "
                     "out = h + ffn(norm(h))")


@pytest.mark.goldens("transformer_block")
def test_a_prefix_does_not_see_later_tokens(impl, golden):
    """The block is causal: running the first 5 tokens alone gives the same first 5 rows."""
    case = golden.goldens[0]  # the first prompt, layer 0
    kwargs = golden.kwargs(case)
    prefix = impl.transformer_block(**{**kwargs, "x": kwargs["x"][:5], "freqs_cis": kwargs["freqs_cis"][:5],
                                       "mask": kwargs["mask"][:5, :5]})
    expect_close("first 5 rows", prefix, case.expected["out"][:5], tol="float32 layers",
                 why="the block on the first 5 tokens alone must give the first 5 rows of the block on all of them")
