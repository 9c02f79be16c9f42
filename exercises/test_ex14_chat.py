"""Exercise 14 graded tests: Llama 3's chat format, ChatML, and a conversation that keeps its cache. Run:
pytest exercises/ -k ex14"""

import functools

import pytest
from hypothesis import given, strategies as st

from grader.testing import GradeFailure, expect_equal, tiny, with_chatml
from solutions import ex14_chat as reference

# docs/facts.md §4.4 (Meta's llama/test_tokenizer.py)
PUBLISHED_DIALOG = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hi"}]
PUBLISHED_IDS = [128000, 128006, 9125, 128007, 271, 2675, 527, 264, 11190, 18328, 13, 128009, 128006, 882, 128007, 271,
                 13347, 128009, 128006, 78191, 128007, 271]


@pytest.mark.goldens("encode_header")
def test_encode_header(impl, golden):
    golden.check(impl.encode_header)


@pytest.mark.goldens("end_of_turn")
def test_end_of_turn(impl, golden):
    golden.check(impl.end_of_turn)


@pytest.mark.goldens("encode_message")
def test_encode_message(impl, golden):
    golden.check(impl.encode_message)


@pytest.mark.goldens("encode_dialog")
def test_encode_dialog(impl, golden):
    golden.check(impl.encode_dialog)


@pytest.mark.goldens("Chat")
def test_chat(impl, golden):
    golden.check(impl.Chat)


def test_the_published_llama3_ids(impl):
    """docs/facts.md §4.4: the headers' ids and the whole published dialog, on Meta's tokenizer."""
    encoding = tiny("tiny-llama3").checkpoint.tokenizer.encoding
    for role, ids in (("user", [882]), ("system", [9125]), ("assistant", [78191])):
        _expect_ids(f"encode_header({role!r})", impl.encode_header(encoding, role), [128006, *ids, 128007, 271],
                    encoding)
    _expect_ids("encode_dialog of the published example", impl.encode_dialog(encoding, PUBLISHED_DIALOG), PUBLISHED_IDS,
                encoding)


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30).filter(str.strip)
_message = st.fixed_dictionaries({"role": st.sampled_from(reference.ROLES), "content": _text})
_spoil = st.sampled_from([("role", "bot"), ("role", "User"), ("role", None), ("content", ""), ("content", "  \n\t"),
                          ("content", None)])


@given(messages=st.lists(_message, min_size=1, max_size=4), chat_format=st.sampled_from(reference.FORMATS),
       spoil=_spoil, where=st.integers(0, 3))
def test_dialogs_encode_as_the_reference_and_bad_messages_are_one_line_errors(impl, messages, chat_format, spoil,
                                                                             where):
    """A drawn dialog (any text, any roles) with one message given a bad role or no text is a ValueError whose message
    is one line; without that message spoilt, the dialog gives the reference's ids (Llama 3's format strips each
    message, ChatML encodes the role and the content as one text)."""
    encoding = _encoding(chat_format)
    key, value = spoil
    bad = [dict(m) for m in messages]
    bad[where % len(bad)][key] = value
    try:
        impl.encode_dialog(encoding, bad, chat_format)
    except ValueError as e:
        text = str(e).strip()
        if not text or "\n" in text:
            raise GradeFailure(f"the ValueError for the message {bad[where % len(bad)]!r} should say what is wrong in "
                               f"one line, got {text!r}") from None
    else:
        raise GradeFailure(f"encode_dialog accepted the message {bad[where % len(bad)]!r}: a role must be one of "
                           f"{', '.join(reference.ROLES)} and the content some text; raise ValueError with one line "
                           "that says which")
    _expect_ids(f"encode_dialog({chat_format!r}) of {messages!r}", impl.encode_dialog(encoding, messages, chat_format),
                reference.encode_dialog(encoding, messages, chat_format), encoding)


def _expect_ids(name: str, got, expected: list[int], encoding) -> None:
    """expect_equal on token ids; when they differ, the ids decoded one by one are compared too, so that the failure
    shows the pieces ('\\n', '  What' against '\\n  ', 'What') beside the ids."""
    try:
        expect_equal(name, got, expected)
    except GradeFailure as ids_differ:
        try:
            expect_equal(f"{name}, decoded", _pieces(encoding, got), _pieces(encoding, expected))
        except GradeFailure as pieces_differ:
            raise GradeFailure(f"{ids_differ}\n{pieces_differ}") from None
        raise


def _pieces(encoding, ids) -> list[str] | None:
    """Each id decoded on its own ('?' for what is not a token id)."""
    if not isinstance(ids, (list, tuple)):
        return None
    return [encoding.decode([t]) if isinstance(t, int) and 0 <= t < encoding.n_vocab else "?" for t in ids]


@functools.cache
def _encoding(chat_format: str):
    """Meta's tokenizer, or the same with two reserved special tokens renamed <|im_start|> and <|im_end|>."""
    t = tiny("tiny-llama3").checkpoint.tokenizer
    return t.encoding if chat_format == "llama3" else with_chatml(t)
