"""A GGUF's metadata and an imported folder's tokenizer_params.json, checked for type and range with the key named:
every corruption is one line and exit code 2 that leaves nothing behind, never a traceback, never a table of a
hundred million tensors, never "generate raised ..." at the learner's code."""

import json
import time

import pytest

from ckpt_kit import grader, one_line_error
from gguf_kit import SPECIALS, gguf, vocab, write_gguf

pytestmark = pytest.mark.usefixtures("clean_env")

T = gguf.GGUFValueType


def import_gguf(source, out):
    return ("checkpoint", "import-gguf", source, "--out", out)


def refused(capsys, tmp_path, **write) -> str:
    """Write a GGUF with these changes, import it: the one line, and nothing written."""
    path = tmp_path / "bad.gguf"
    write_gguf(path, **write)
    out = tmp_path / "out"
    start = time.perf_counter()
    line = one_line_error(capsys, *import_gguf(path, out))
    assert time.perf_counter() - start < 20
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))
    return line


@pytest.mark.parametrize("key, value", [
    ("llama.block_count", (100_000_000, T.UINT32)),
    ("llama.attention.head_count", ("4", T.STRING)),
    ("llama.attention.head_count_kv", ("2", T.STRING)),
    ("llama.embedding_length", ("32", T.STRING)),
    ("llama.feed_forward_length", (0, T.UINT32)),
    ("llama.vocab_size", ("many", T.STRING)),
    ("llama.attention.layer_norm_rms_epsilon", (-1e-5, T.FLOAT32)),
    ("llama.rope.freq_base", (0.0, T.FLOAT32)),
    ("general.architecture", (7, T.UINT32)),
    ("tokenizer.ggml.pre", (1, T.UINT32)),
    ("tokenizer.ggml.eos_token_id", (1_000_000, T.UINT32)),
    ("tokenizer.ggml.eos_token_id", ("2", T.STRING)),
    ("tokenizer.ggml.add_bos_token", ("yes", T.STRING)),
    ("tokenizer.ggml.token_type", ([1] * 10, T.ARRAY, T.INT32)),
])
def test_a_gguf_value_of_the_wrong_type_or_range_is_named(capsys, tmp_path, key, value):
    line = refused(capsys, tmp_path, fields={key: value})
    assert key in line and "Traceback" not in line


def test_a_bos_id_past_the_vocabulary_is_named(capsys, tmp_path):
    fields = {"tokenizer.ggml.add_bos_token": (True, T.BOOL), "tokenizer.ggml.bos_token_id": (len(vocab()), T.UINT32)}
    assert "tokenizer.ggml.bos_token_id" in refused(capsys, tmp_path, fields=fields)


def test_token_text_that_is_not_utf8_names_the_token(capsys, tmp_path):
    tokens = vocab()
    tokens[7] = b"\xff\xfe"
    line = refused(capsys, tmp_path, fields={"tokenizer.ggml.tokens": (tokens, T.ARRAY, T.STRING)})
    assert "tokenizer.ggml.tokens, token 7," in line and "UTF-8" in line


def test_a_hundred_million_blocks_are_refused_from_the_tensors_present(capsys, tmp_path):
    line = refused(capsys, tmp_path, fields={"llama.block_count": (100_000_000, T.UINT32)})
    assert "llama.block_count is 100000000" in line and "blocks 0 to 1" in line


@pytest.fixture
def imported(tmp_path, capsys):
    path = tmp_path / "tiny-chat.gguf"
    write_gguf(path)
    out = tmp_path / "imported"
    assert grader(*import_gguf(path, out)) == 0
    capsys.readouterr()
    return out


def generate(folder):
    return ("generate", "--impl", "solutions", "--checkpoint", folder, "--max-new-tokens", "2", "--prompt", "the")


@pytest.mark.parametrize("key, value", [
    ("bos_id", len(vocab()) + 5), ("bos_id", "1"), ("stop_ids", [2, 10**9]), ("stop_ids", "2"), ("stop_ids", [2.0]),
    ("special_tokens", {"<|endoftext|>": "0"}), ("special_tokens", ["<|endoftext|>"]), ("name", 5), ("pattern", None),
    ("pattern", r"(?P<unclosed"), ("chat_format", "alpaca"),
])
def test_a_tokenizer_params_value_of_the_wrong_type_or_range_is_named(capsys, imported, key, value):
    path = imported / "tokenizer_params.json"
    params = json.loads(path.read_text())
    params[key] = value
    path.write_text(json.dumps(params))
    line = one_line_error(capsys, *generate(imported))
    assert f"tokenizer_params.json: {key}" in line and "raised" not in line


def test_the_specials_of_the_tiny_gguf_stay_what_the_checks_accept(imported):
    params = json.loads((imported / "tokenizer_params.json").read_text())
    assert list(params["special_tokens"]) == SPECIALS
