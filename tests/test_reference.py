"""solutions/ against an independent implementation: Hugging Face transformers' LlamaForCausalLM on the same tiny
weights (converted to its layout), and cached generation against recomputation from scratch."""

import math

import pytest
import torch

from grader.formats import hf_layout, writers
from grader.specs.inputs import PROMPTS
from grader.engine.models import tiny
from grader.paths import TINY_MODELS
from solutions import ex01_tokenizer as tok
from solutions.ex06_rope import precompute_freqs_cis
from solutions.ex11_forward import forward, generate_uncached
from solutions.ex12_generation import generate

transformers = pytest.importorskip("transformers",
                                   reason="transformers is the independent oracle: pip install -e '.[dev]'")


@pytest.fixture(scope="module", params=TINY_MODELS)
def model(request):
    return tiny(request.param)


@pytest.fixture(scope="module")
def hf_model(model, tmp_path_factory):
    """The tiny checkpoint written in Hugging Face's layout by the kit, loaded by transformers from that folder."""
    ck = model.checkpoint
    folder = tmp_path_factory.mktemp(model.name)
    writers.save_hf(folder, hf_layout.to_hf(ck.weights, ck.args, ck.tied), hf_layout.config(ck.args, ck.tied, ck.dtype),
                    hf_layout.params_json(ck.args))
    return transformers.LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def _ids(model, prompt: str) -> list[int]:
    return tok.encode(model.tokenizer, PROMPTS[prompt])


@pytest.mark.parametrize("prompt", PROMPTS)
def test_logits_agree_with_transformers_in_float32(model, hf_model, prompt):
    ids = _ids(model, prompt)
    with torch.no_grad():
        expected = hf_model(torch.tensor([ids])).logits[0]  # [seq, vocab]
    got = forward(torch.tensor(ids), model.weights("float32"), model.checkpoint.args)
    assert (got - expected).abs().max() <= 1e-4
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_generation_agrees_with_transformers(model, hf_model, prompt):
    ids = _ids(model, prompt)
    with torch.no_grad():
        expected = hf_model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False, eos_token_id=None,
                                     pad_token_id=0)[0, len(ids):].tolist()
    got = [t for t, _ in generate(ids, model.weights("float32"), model.checkpoint.args, 16)]
    assert got == expected


@pytest.mark.parametrize("factor", [8.0, 32.0])
@pytest.mark.parametrize("head_dim", [64, 128])
def test_rope_scaling_agrees_with_transformers_llama3_rope(factor, head_dim):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, head_dim=head_dim,
                         max_position_embeddings=131072, rope_theta=500000.0,
                         rope_scaling={"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    inv_freq, attention_factor = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    ours = precompute_freqs_cis(head_dim, 2, 500000.0, factor)[1].angle()  # the angle at position 1 is the frequency
    assert attention_factor == 1.0
    torch.testing.assert_close(ours, inv_freq.float(), rtol=1e-6, atol=0)
    base = precompute_freqs_cis(head_dim, 2, 500000.0)[1].angle()
    bands = (int((ours == base).sum()), int((ours == base / factor).sum()))
    assert bands == {64: (15, 14), 128: (29, 29)}[head_dim]  # docs/facts.md §2.2: kept, divided (the rest is smoothed)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_cached_generation_equals_recomputation(model, prompt):
    """Same tokens, and logits within float32 noise, from the KV cache and from re-running the whole sequence."""
    ids, w, args = _ids(model, prompt), model.weights("float32"), model.checkpoint.args
    cached = list(generate(ids, w, args, 12))
    recomputed = list(generate_uncached(ids, w, args, 12))
    assert [t for t, _ in cached] == [t for t, _ in recomputed]
    for (_, a), (_, b) in zip(cached, recomputed):
        assert (a - b).abs().max() <= 1e-4 * math.sqrt(b.pow(2).mean().item())


def test_generation_stops_at_a_stop_token(model):
    ids, w, args = _ids(model, "prompt42"), model.weights("float32"), model.checkpoint.args
    free = [t for t, _ in generate(ids, w, args, 6)]
    assert [t for t, _ in generate(ids, w, args, 6, stop_tokens=(free[2],))] == free[:free.index(free[2])]


def test_float32_and_bfloat16_agree_for_eight_tokens(model):
    """Random weights were scaled so greedy decoding is not decided by rounding (at least 8 tokens)."""
    ids, args = _ids(model, "prompt42"), model.checkpoint.args
    f32 = [t for t, _ in generate(ids, model.weights("float32"), args, 8)]
    bf16 = [t for t, _ in generate(ids, model.weights(), args, 8)]
    assert f32 == bf16
    assert len(set(f32)) == 8, "the continuation should not repeat one token (degenerate logits)"
