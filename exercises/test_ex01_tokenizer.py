"""Exercise 1 graded tests: the tokenizer. Run: pytest exercises/ -k ex01"""

import pytest
from hypothesis import given, strategies as st

from grader.testing import PROMPT42_IDS, PROMPTS, TOKENIZER, expect_equal, tiny
from solutions import ex01_tokenizer as reference

# Text built from the pieces Llama 3's split pattern treats apart: digit runs, whitespace runs, contractions in any
# case, punctuation runs, newlines, letters, Chinese, emoji, and text that looks like a special token.
PIECES = st.one_of(
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.from_regex(r"[ \t\n\r]{1,6}", fullmatch=True),
    st.sampled_from(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]).flatmap(
        lambda c: st.sampled_from([c, c.upper(), c.title()])),
    st.from_regex(r"[!-/:-@\[-`{-~]{1,5}", fullmatch=True),
    st.from_regex(r"[A-Za-zéüñ]{1,9}", fullmatch=True),
    st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=4),
    st.sampled_from(["🦙", "🚀", "👍🏽", "🇫🇷", "❤️", "∑", "—"]),
    st.sampled_from(["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|reserved_special_token_7|>",
                     "<|", "|>", "<|eot_id"]),
)
TEXTS = st.lists(PIECES, min_size=1, max_size=12).map("".join)


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
    """docs/facts.md §0: the ids printed by the llama3-from-scratch notebooks for the real 8B model."""
    tokenizer = impl.load_tokenizer(TOKENIZER)
    expect_equal("encode(the 42 prompt)", impl.encode(tokenizer, PROMPTS["prompt42"]), PROMPT42_IDS)


def test_2983_decodes_to_42(impl, reference_tokenizer):
    expect_equal("decode([2983])", impl.decode(reference_tokenizer, [2983]), "42")


def test_special_token_ids(impl):
    """docs/facts.md §4.2: the ids of the tokens that matter, the same in Llama 3, 3.1 and 3.2."""
    table = impl.special_tokens()
    expect_equal("len(special_tokens())", len(table), 256)
    for name, id_ in {"<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|start_header_id|>": 128006,
                      "<|end_header_id|>": 128007, "<|eot_id|>": 128009}.items():
        expect_equal(f"special_tokens()[{name!r}]", table.get(name), id_)
    expect_equal("sorted ids", sorted(table.values()), list(range(128000, 128256)))


def test_encode_and_decode_match_the_reference_on_drawn_text(impl, reference_tokenizer):
    """A golden test on drawn text: your tokenizer (loaded by your load_tokenizer), your encode and your decode give
    what the reference gives."""
    mine = impl.load_tokenizer(TOKENIZER)

    @given(text=TEXTS)
    def check(text):
        ids = reference.encode(reference_tokenizer, text)
        expect_equal(f"your load_tokenizer's encoding of {text!r}",
                     mine.encode(text, allowed_special=set(), disallowed_special=()),
                     ids[1:], why="tokens from the tokenizer your load_tokenizer built")
        expect_equal(f"encode(tokenizer, {text!r})", impl.encode(reference_tokenizer, text), ids)
        expect_equal(f"decode(tokenizer, encode({text!r}))", impl.decode(reference_tokenizer, ids[1:]), text)

    check()


@given(text=st.text(max_size=60))
def test_decode_inverts_encode(impl, reference_tokenizer, text):
    ids = impl.encode(reference_tokenizer, text, bos=False)
    expect_equal("decode(encode(text))", impl.decode(reference_tokenizer, ids), text)
