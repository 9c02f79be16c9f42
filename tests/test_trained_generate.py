"""`llama3-grader generate` and `bench` on the fetched SmolLM2-135M-Instruct: real English from the implementation under
test, with SmolLM2's own tokenizer and stop ids. Skipped, with the line that says how to fetch, when it is not there."""

import json

import pytest

from ckpt_kit import grader
from gguf_kit import trained

pytestmark = pytest.mark.usefixtures("one_thread")
FRANCE = "The capital of France is"
FRANCE_IDS = [504, 3575, 282, 4649, 314]  # no BOS: SmolLM2 has none


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    for name in ("LLAMA3_CHECKPOINT", "LLAMA3_KIT_IMPL", "LLAMA3_ROPE_SCALE_FACTOR"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_the_reference_says_paris(capsys, dtype):
    assert grader("generate", "--impl", "solutions", "--checkpoint", trained(), "--prompt", FRANCE,
                  "--max-new-tokens", "2", "--dtype", dtype, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokenizer"] == "SmolLM2-135M-Instruct" and out["dtype"] == dtype
    assert out["prompt_ids"] == FRANCE_IDS
    assert out["text"] == " Paris."
    for key in ("checkpoint", "impl", "prompt", "generated_ids", "top10"):
        assert key in out


def test_the_streamed_text_follows_the_prompt(capsys):
    assert grader("generate", "--impl", "solutions", "--checkpoint", trained(), "--prompt", FRANCE,
                  "--max-new-tokens", "2") == 0
    assert capsys.readouterr().out == FRANCE + " Paris.\n"


def test_smollm2_s_stop_ids_reach_the_implementation(capsys, monkeypatch):
    from solutions import ex12_generation

    seen = []
    real = ex12_generation.generate

    def recording(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
        seen.append(tuple(stop_tokens))
        return real(prompt_ids, weights, args, max_new_tokens, stop_tokens)

    monkeypatch.setattr(ex12_generation, "generate", recording)
    assert grader("generate", "--impl", "solutions", "--checkpoint", trained(), "--prompt", FRANCE,
                  "--max-new-tokens", "1", "--json") == 0
    assert seen == [(0, 2)]  # <|endoftext|>, <|im_end|>


def test_bench_uses_smollm2_s_tokenizer(capsys):
    assert grader("bench", "--impl", "solutions", "--checkpoint", trained(), "--prompt", FRANCE, "--new-tokens", "2",
                  "--repeats", "1", "--no-transformers", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokenizer"] == "SmolLM2-135M-Instruct" and out["prompt_tokens"] == len(FRANCE_IDS)
