"""Exercise 1 graded tests: the tokenizer. Run: pytest exercises/ -k ex01"""

import pytest
from hypothesis import given, strategies as st

from grader.engine.cases import PROMPT42_IDS, PROMPTS
from grader.engine.models import tiny
from grader.paths import TOKENIZER
from grader.engine.testing import expect_equal


@pytest.fixture(scope="module")
def reference_tokenizer():
    return tiny("tiny-llama3").tokenizer


@pytest.mark.goldens("special_tokens")
def test_special_tokens(impl, golden):
    golden.check(impl.special_tokens)


@pytest.mark.goldens("load_tokenizer")
def test_load_tokenizer(impl, golden):
    golden.check(impl.load_tokenizer)


@pytest.mark.goldens("encode")
def test_encode(impl, golden):
    golden.check(impl.encode)


@pytest.mark.goldens("decode")
def test_decode(impl, golden):
    golden.check(impl.decode)


def test_the_42_prompt_has_the_published_ids(impl):
    """FACTS section 0: the ids printed by the llama3-from-scratch notebooks for the real 8B model."""
    tokenizer = impl.load_tokenizer(TOKENIZER)
    expect_equal("encode(the 42 prompt)", impl.encode(tokenizer, PROMPTS["prompt42"]), PROMPT42_IDS)


def test_2983_decodes_to_42(impl, reference_tokenizer):
    expect_equal("decode([2983])", impl.decode(reference_tokenizer, [2983]), "42")


def test_special_token_ids(impl):
    """FACTS section 4: the ids of the tokens that matter, the same in Llama 3, 3.1 and 3.2."""
    table = impl.special_tokens()
    expect_equal("len(special_tokens())", len(table), 256)
    for name, id_ in {"<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|start_header_id|>": 128006,
                      "<|end_header_id|>": 128007, "<|eot_id|>": 128009}.items():
        expect_equal(f"special_tokens()[{name!r}]", table.get(name), id_)
    expect_equal("sorted ids", sorted(table.values()), list(range(128000, 128256)))


@given(text=st.text(max_size=60))
def test_decode_inverts_encode(impl, reference_tokenizer, text):
    ids = impl.encode(reference_tokenizer, text, bos=False)
    expect_equal("decode(encode(text))", impl.decode(reference_tokenizer, ids), text)
