"""Exercise 11 graded tests: the full forward pass. Run: pytest exercises/ -k ex11"""

import pytest
import torch

from grader.testing import MODELS, PROMPT42_IDS, expect_close, expect_equal, golden_case, tiny


@pytest.mark.goldens("forward")
def test_forward(impl, golden):
    golden.check(impl.forward)


@pytest.mark.goldens("next_token")
def test_next_token(impl, golden):
    golden.check(impl.next_token)


@pytest.mark.goldens("generate_uncached")
def test_generate_uncached(impl, golden):
    golden.check(impl.generate_uncached)


@pytest.mark.goldens("forward")
def test_a_prefix_gives_the_same_logits(impl, golden):
    """Logits at position i depend only on tokens 0..i: the first 6 tokens alone give the same first 6 rows."""
    case = next(g for g in golden.goldens if g.call.reduce == "logits" and g.call.kwargs["tokens"].shape[0] > 6)
    kwargs = golden.kwargs(case)
    prefix = impl.forward(**{**kwargs, "tokens": kwargs["tokens"][:6]})
    expect_close("logits of the first 6 positions (first 1024 columns)", prefix[:, :1024], case.expected["head"][:6],
                 tol="float32 layers")


@pytest.mark.parametrize("name", ["tiny-llama3", "tiny-llama3.2"])
def test_end_to_end_with_your_own_exercises(chain, name):
    """Your tokenizer, your checkpoint loader and your forward, chained: the logits of the 42 prompt."""
    tok_mod, ckpt_mod, fwd_mod = chain.ex01_tokenizer, chain.ex02_checkpoint, chain.ex11_forward
    folder = MODELS / name
    tokenizer = chain.run(tok_mod.load_tokenizer, tiny(name).checkpoint.tokenizer_path)
    ids = chain.run(tok_mod.encode, tokenizer,
                    "the answer to the ultimate question of life, the universe, and everything is ")
    args, weights = chain.run(ckpt_mod.load_params, folder), chain.run(ckpt_mod.load_weights, folder)
    weights.setdefault("output.weight", weights["tok_embeddings.weight"])
    logits = chain.run(fwd_mod.forward, torch.tensor(ids), weights, args)
    expected = golden_case(name, "ex11_forward", "forward", "prompt42_bf16")
    expect_close("logits at the last position", logits[-1], expected.expected["last"], tol="bf16 attention")


@pytest.mark.real
def test_the_real_model_predicts_42(impl, llama3_8b):
    """docs/facts.md §0: on Meta-Llama-3-8B the 42 prompt's last position has argmax 2983 ("42")."""
    logits = impl.forward(torch.tensor(PROMPT42_IDS), llama3_8b.weights(), llama3_8b.checkpoint.args)
    expect_equal("argmax of the last position", int(logits[-1].argmax()), 2983)
