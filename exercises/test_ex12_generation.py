"""Exercise 12 graded tests: the KV cache and generation. Run: pytest exercises/ -k ex12"""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from grader.testing import MODELS, PROMPT42_IDS, PROMPTS, expect_close, expect_equal, golden_case, tiny
from solutions.ex11_forward import forward


@pytest.mark.goldens("KVCache")
def test_kv_cache(impl, golden):
    golden.check(impl.KVCache)


@pytest.mark.goldens("generate")
def test_generate(impl, golden):
    golden.check(impl.generate)


@settings(max_examples=8)
@given(prompt=st.lists(st.integers(0, 127999), min_size=1, max_size=12), n_new=st.integers(1, 6),
       name=st.sampled_from(["tiny-llama3", "tiny-llama3.2"]))
def test_cached_decoding_equals_full_recomputation(impl, prompt, n_new, name):
    """Every token from the cache is the argmax of a forward pass over the whole sequence so far."""
    model = tiny(name)
    weights, args = model.weights("float32"), model.checkpoint.args
    steps = list(impl.generate(prompt, weights, args, n_new))
    expect_equal("number of tokens", len(steps), n_new)
    ids = list(prompt)
    for i, (token, logits) in enumerate(steps):
        full = forward(torch.tensor(ids), weights, args)[-1]
        expect_close(f"logits of step {i}", logits, full, tol="float32 layers",
                     why="cached logits must equal recomputing the whole sequence")
        expect_equal(f"token of step {i}", token, int(full.argmax()))
        ids.append(token)


@pytest.mark.parametrize("name", ["tiny-llama3", "tiny-llama3.2"])
def test_end_to_end_with_your_own_exercises(chain, name):
    """Everything you built, chained: tokenize, load, generate 16 tokens greedily, decode."""
    tok_mod, ckpt_mod, gen_mod = chain.ex01_tokenizer, chain.ex02_checkpoint, chain.ex12_generation
    folder = MODELS / name
    tokenizer = chain.run(tok_mod.load_tokenizer, tiny(name).checkpoint.tokenizer_path)
    ids = chain.run(tok_mod.encode, tokenizer, PROMPTS["prompt42"])
    args, weights = chain.run(ckpt_mod.load_params, folder), chain.run(ckpt_mod.load_weights, folder)
    weights = {k: w.float() for k, w in weights.items()}
    weights.setdefault("output.weight", weights["tok_embeddings.weight"])
    tokens = [t for t, _ in chain.run(gen_mod.generate, ids, weights, args, 16, tok_mod.STOP_TOKENS)]
    expected = golden_case(name, "ex12_generation", "generate", "prompt42")
    expect_equal("generated tokens", tokens, expected.expected["tokens"])
    text = chain.run(tok_mod.decode, tokenizer, tokens)
    expect_equal("decoded text", text, tiny(name).tokenizer.decode(expected.expected["tokens"]))


@pytest.mark.real
def test_the_real_model_answers_42(impl, llama3_8b):
    """docs/facts.md §0: Meta-Llama-3-8B continues the 42 prompt with "42" (token 2983)."""
    steps = list(impl.generate(PROMPT42_IDS, llama3_8b.weights(), llama3_8b.checkpoint.args, 2,
                               (128001, 128008, 128009)))
    text = llama3_8b.tokenizer.decode([t for t, _ in steps])
    expect_equal("the first generated token", steps[0][0] if steps else None, 2983,
                 why=f"the completion began {text!r}")
    if not text.startswith("42"):
        expect_equal("the completion", text[:2], "42")
