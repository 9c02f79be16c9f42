"""Every value a checkpoint's metadata holds (params.json, config.json) is checked for type and range, with its key
named, before anything is sized from it: one line and exit code 2, never a traceback, never "generate raised ..." at
a line of the learner's code, never a table of a hundred million tensors. (GGUF keys and tokenizer_params.json:
test_gguf_metadata.py.)"""

import json
import time

import pytest

from ckpt_kit import TOKENIZER, copy_tiny, grader, one_line_error
from grader.formats import checkpoint, hf_layout, writers
from grader.paths import MODELS

pytestmark = pytest.mark.usefixtures("clean_env")

HUNDRED_MILLION = 100_000_000


def generate(folder, *extra):
    return ("generate", "--impl", "solutions", "--checkpoint", folder, "--max-new-tokens", "1", *extra)


def set_json(path, **changes) -> None:
    """Set keys (None writes JSON null; use edit_json of ckpt_kit to remove one)."""
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.fixture
def meta(tmp_path):
    return copy_tiny("tiny-llama3", tmp_path / "meta")


@pytest.fixture
def hf(tmp_path):
    ck = checkpoint.load(MODELS / "tiny-llama3")
    folder = tmp_path / "hf"
    writers.save_hf(folder, hf_layout.to_hf(ck.weights, ck.args, False), hf_layout.config(ck.args, False, ck.dtype),
                    hf_layout.params_json(ck.args), TOKENIZER)
    return folder


@pytest.mark.parametrize("key, value", [
    ("n_heads", "4"), ("n_heads", 4.0), ("n_heads", True), ("n_kv_heads", "2"), ("n_kv_heads", 1.5), ("dim", "32"),
    ("dim", -32), ("vocab_size", "128256"), ("multiple_of", 0), ("multiple_of", None), ("ffn_dim_multiplier", "1.3"),
    ("ffn_dim_multiplier", -1.3), ("norm_eps", None), ("norm_eps", -1e-5), ("norm_eps", "1e-5"), ("norm_eps", 2.0),
    ("rope_theta", 0), ("rope_theta", -500000.0), ("rope_theta", "500000"), ("rope_theta", None),
    ("use_scaled_rope", "yes"),
])
def test_a_params_json_value_of_the_wrong_type_or_range_is_named(capsys, meta, key, value):
    set_json(meta / "params.json", **{key: value})
    line = one_line_error(capsys, *generate(meta))
    assert f"params.json: {key} " in line and "raised" not in line


def test_a_rope_scaling_factor_that_is_not_a_positive_number_is_named(capsys, meta):
    set_json(meta / "params.json", use_scaled_rope=True, rope_scaling_factor=-32)
    assert "rope_scaling_factor" in one_line_error(capsys, *generate(meta))


def test_a_head_size_that_rope_cannot_split_into_pairs(capsys, meta):
    set_json(meta / "params.json", n_heads=32, n_kv_heads=16)  # head_dim 1: every tensor keeps its shape
    line = one_line_error(capsys, *generate(meta))
    assert "head_dim" in line and "even" in line and "raised" not in line


@pytest.mark.parametrize("verb", ["generate", "verify"])
def test_a_hundred_million_layers_are_refused_at_once_from_the_layers_present(capsys, meta, verb):
    set_json(meta / "params.json", n_layers=HUNDRED_MILLION)
    start = time.perf_counter()
    if verb == "generate":
        line = one_line_error(capsys, *generate(meta))
    else:
        assert grader("checkpoint", "verify", meta) == 1
        line = capsys.readouterr().out
    assert time.perf_counter() - start < 10
    assert f"n_layers {HUNDRED_MILLION}" in line and "layers 0 to 1" in line


@pytest.mark.parametrize("key, value", [
    ("num_hidden_layers", "2"), ("num_attention_heads", "4"), ("num_key_value_heads", 2.5), ("hidden_size", "32"),
    ("intermediate_size", 0), ("vocab_size", "128256"), ("rms_norm_eps", None), ("rms_norm_eps", -1.0),
    ("rope_theta", 0), ("rope_theta", "500000"), ("max_position_embeddings", "8192"), ("max_position_embeddings", 0),
    ("head_dim", "8"), ("tie_word_embeddings", "no"),
])
def test_a_config_json_value_of_the_wrong_type_or_range_is_named(capsys, hf, key, value):
    set_json(hf / "config.json", **{key: value})
    line = one_line_error(capsys, *generate(hf))
    assert f"config.json: {key} " in line and "raised" not in line


def test_a_hundred_million_hugging_face_layers_are_refused_at_once(capsys, hf):
    set_json(hf / "config.json", num_hidden_layers=HUNDRED_MILLION)
    start = time.perf_counter()
    line = one_line_error(capsys, *generate(hf))
    assert time.perf_counter() - start < 10
    assert f"n_layers {HUNDRED_MILLION}" in line and "layers 0 to 1" in line


def test_a_rope_scaling_factor_of_the_wrong_type_is_named(capsys, hf):
    set_json(hf / "config.json", rope_scaling={"rope_type": "llama3", "factor": "32", **hf_layout.LLAMA3_ROPE})
    assert "config.json: rope_scaling.factor " in one_line_error(capsys, *generate(hf))


@pytest.mark.parametrize("entry", [5, "../elsewhere/model.safetensors", "/tmp/model.safetensors", "model.bin"])
def test_an_index_entry_that_is_not_a_file_name(capsys, hf, entry):
    (hf / "model.safetensors").rename(hf / "model-00001-of-00001.safetensors")
    index = {"weight_map": {"model.embed_tokens.weight": entry,
                            "model.norm.weight": "model-00001-of-00001.safetensors"}}
    (hf / "model.safetensors.index.json").write_text(json.dumps(index))
    line = one_line_error(capsys, *generate(hf))
    assert "model.safetensors.index.json" in line and "model.embed_tokens.weight" in line
