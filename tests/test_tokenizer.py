"""The shipped tokenizer and the reference tokenizer code reproduce the published facts (docs/facts.md §0 and §4)."""

import hashlib

from hypothesis import given, strategies as st

from grader.specs.inputs import PROMPT42_IDS, PROMPTS
from grader.paths import TOKENIZER
from solutions import ex01_tokenizer as tok

TOKENIZER_MD5 = "08292403f8b173e7524d7fba7bbbd2d3"
tokenizer = tok.load_tokenizer(TOKENIZER)


def test_the_shipped_tokenizer_is_metas():
    assert hashlib.md5(TOKENIZER.read_bytes()).hexdigest() == TOKENIZER_MD5
    assert (TOKENIZER.parent / "LICENSE").is_file()
    assert "Built with Meta Llama 3" in (TOKENIZER.parent / "NOTICE").read_text()


def test_the_42_prompt_tokenizes_to_the_published_ids():
    assert tok.encode(tokenizer, PROMPTS["prompt42"]) == PROMPT42_IDS
    pieces = [tokenizer.decode([i]) for i in PROMPT42_IDS]
    assert pieces == ["<|begin_of_text|>", "the", " answer", " to", " the", " ultimate", " question", " of", " life",
                      ",", " the", " universe", ",", " and", " everything", " is", " "]


def test_2983_decodes_to_42():
    assert tok.decode(tokenizer, [2983]) == "42"


def test_special_token_ids():
    table = tok.special_tokens()
    assert len(table) == 256 and tokenizer.n_vocab == 128256
    assert {name: table[name] for name in ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                           "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
                                           "<|finetune_right_pad_id|>")} == {
        "<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|start_header_id|>": 128006,
        "<|end_header_id|>": 128007, "<|eom_id|>": 128008, "<|eot_id|>": 128009, "<|python_tag|>": 128010,
        "<|finetune_right_pad_id|>": 128004}
    assert tok.STOP_TOKENS == (128001, 128008, 128009)


def test_published_test_sentence_and_chat_pieces():
    """Meta's test_tokenizer.py: the test sentence with BOS and EOS, and the chat-format role ids."""
    assert tok.encode(tokenizer, "This is a test sentence.", bos=True, eos=True) == [
        128000, 2028, 374, 264, 1296, 11914, 13, 128001]
    assert [tok.encode(tokenizer, s, bos=False) for s in ("user", "system", "assistant", "\n\n", "ipython")] == [
        [882], [9125], [78191], [271], [23799, 4690]]


def test_special_token_text_is_plain_text_unless_allowed():
    assert 128009 not in tok.encode(tokenizer, "<|eot_id|>", bos=False)
    assert tokenizer.encode("<|eot_id|>", allowed_special="all") == [128009]


@given(text=st.text(max_size=200))
def test_decode_inverts_encode(text):
    assert tok.decode(tokenizer, tok.encode(tokenizer, text, bos=False)) == text
