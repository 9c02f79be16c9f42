"""Exercise 10 graded tests: the transformer block. Run: pytest exercises/ -k ex10"""

import pytest
import torch

from grader.testing import expect_close


@pytest.mark.goldens("transformer_block")
def test_transformer_block(impl, golden):
    golden.check(impl.transformer_block)


@pytest.mark.goldens("transformer_block")
def test_with_zero_output_projections_the_block_is_the_identity(impl, golden):
    """If wo and w2 are zero, both sublayers add nothing and the residual stream passes through unchanged."""
    kwargs = golden.kwargs
    layer = kwargs["layer_id"]
    weights = dict(kwargs["weights"])
    for name in (f"layers.{layer}.attention.wo.weight", f"layers.{layer}.feed_forward.w2.weight"):
        weights[name] = torch.zeros_like(weights[name])
    out = impl.transformer_block(**{**kwargs, "weights": weights})
    expect_close("transformer_block with wo = w2 = 0", out, kwargs["x"],
                 why="the output must be x + attention(...) + feed_forward(...), with both terms zero here")


@pytest.mark.goldens("transformer_block")
def test_a_prefix_does_not_see_later_tokens(impl, golden):
    """The block is causal: running the first 5 tokens alone gives the same first 5 rows."""
    kwargs = golden.kwargs
    full = impl.transformer_block(**kwargs)
    prefix = impl.transformer_block(**{**kwargs, "x": kwargs["x"][:5], "freqs_cis": kwargs["freqs_cis"][:5], "mask": kwargs["mask"][:5, :5]})
    expect_close("first 5 rows", prefix, full[:5], depth="layer", why="the first 5 outputs changed when later tokens were added")
