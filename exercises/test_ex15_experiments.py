"""Exercise 15 graded tests: the notebooks' experiments. Run: pytest exercises/ -k ex15"""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from grader.testing import GradeFailure, expect_close, expect_equal, randn, tiny
from solutions.ex06_rope import precompute_freqs_cis
from solutions.ex11_forward import forward


@pytest.mark.goldens("attention_probs")
def test_attention_probs(impl, golden):
    golden.check(impl.attention_probs)


@pytest.mark.goldens("forward_unmasked")
def test_forward_unmasked(impl, golden):
    golden.check(impl.forward_unmasked)


@pytest.mark.goldens("top_predictions")
def test_top_predictions(impl, golden):
    golden.check(impl.top_predictions)


@pytest.mark.goldens("rope_rotation")
def test_rope_rotation(impl, golden):
    golden.check(impl.rope_rotation)


def _model(name):
    model = tiny(name)
    return model.weights("float32"), model.checkpoint.args


@settings(max_examples=6)
@given(prompt=st.lists(st.integers(0, 127999), min_size=1, max_size=12),
       name=st.sampled_from(["tiny-llama3", "tiny-llama3.2"]), layer=st.integers(0, 1))
def test_attention_maps_are_causal_distributions(impl, prompt, name, layer):
    """Every head's map [seq, seq]: rows sum to 1, and nothing above the diagonal (a token never looks ahead)."""
    weights, args = _model(name)
    probs = impl.attention_probs(torch.tensor(prompt), weights, args, layer)
    n = len(prompt)
    if not isinstance(probs, torch.Tensor) or probs.shape != (args.n_heads, n, n):
        shape = list(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise GradeFailure(f"attention_probs should return [n_heads, seq, seq] = [{args.n_heads}, {n}, {n}], "
                           f"got {shape}")
    expect_close("sum of every row", probs.sum(-1), torch.ones(args.n_heads, n),
                 why="each row is a softmax over the keys")
    expect_equal("weights above the diagonal", float(probs.triu(diagonal=1).abs().sum()), 0.0,
                 why="the causal mask hides the future")


@settings(max_examples=6)
@given(token=st.integers(0, 127999), prompt=st.lists(st.integers(0, 127999), min_size=2, max_size=12, unique=True),
       name=st.sampled_from(["tiny-llama3", "tiny-llama3.2"]))
def test_without_the_mask_one_token_sees_nothing_new_and_a_prompt_does(impl, token, prompt, name):
    """A lone token has no future to see: its logits are forward's. In a longer prompt the first position now reads
    the tokens after it, and its logits move."""
    weights, args = _model(name)
    one = torch.tensor([token])
    expect_close("logits of a one-token prompt", impl.forward_unmasked(one, weights, args), forward(one, weights, args),
                 tol="float32 layers", why="with one token there is nothing to mask")
    tokens = torch.tensor(prompt)
    moved = (impl.forward_unmasked(tokens, weights, args)[0] - forward(tokens, weights, args)[0]).abs().max()
    if not moved > 1e-3:
        raise GradeFailure(f"forward_unmasked gave position 0 of a {len(prompt)}-token prompt the logits of the masked "
                           f"forward (they differ by {float(moved):.2g} at most): pass mask=None to every "
                           "transformer_block")


@given(seed=st.integers(0, 2**31), seq=st.integers(1, 6), vocab=st.integers(2, 300), k=st.integers(1, 10))
def test_top_predictions_are_the_most_likely_tokens(impl, seed, seq, vocab, k):
    """Probabilities in descending order, of the k largest logits, as softmax gives them."""
    k = min(k, vocab)
    logits = randn(seed, seq, vocab) * 3
    probs, ids = impl.top_predictions(logits, k)
    expected = torch.softmax(logits.double(), dim=-1)
    expect_equal("ids", ids.tolist() if isinstance(ids, torch.Tensor) else ids,
                 logits.argsort(-1, descending=True)[:, :k].tolist(), why="the k most likely tokens, most likely first")
    expect_close("probabilities", probs, expected.gather(-1, ids).float(),
                 why="softmax over the whole vocabulary, then the top k")


@given(seed=st.integers(0, 2**31), head_dim=st.sampled_from([8, 16, 64]), end=st.integers(1, 40))
def test_rope_keeps_each_pair_on_its_circle(impl, seed, head_dim, end):
    """At position 0 the pairs are x's own; at every position each pair keeps its length."""
    x = randn(seed, head_dim)
    points = impl.rope_rotation(x, precompute_freqs_cis(head_dim, end, 10000.0))
    pairs = x.reshape(-1, 2)  # [head_dim // 2, 2]
    expect_close("the pairs at position 0", points[0], pairs, why="position 0 rotates by angle 0")
    expect_close("the length of every pair at every position", points.norm(dim=-1), pairs.norm(dim=-1).expand(end, -1),
                 why="a rotation keeps lengths")
