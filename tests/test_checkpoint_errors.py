"""Every bad checkpoint a person can hand the kit gives one line that says what is wrong and what to do, and exit
code 2: never a traceback."""

import json
import os
import subprocess
import sys

import pytest
import torch

from ckpt_kit import TOKENIZER, copy_tiny, edit_json, one_line_error
from grader.formats import checkpoint, writers
from grader.paths import MODELS

pytestmark = pytest.mark.usefixtures("clean_env")


def generate(folder, *extra):
    return ("generate", "--impl", "solutions", "--checkpoint", folder, "--max-new-tokens", "1", *extra)


@pytest.fixture
def meta(tmp_path):
    return copy_tiny("tiny-llama3", tmp_path / "meta")


@pytest.fixture
def hf(tmp_path):
    ck = checkpoint.load(MODELS / "tiny-llama3")
    from grader.formats import hf_layout

    folder = tmp_path / "hf"
    writers.save_hf(folder, hf_layout.to_hf(ck.weights, ck.args, False), hf_layout.config(ck.args, False, ck.dtype),
                    hf_layout.params_json(ck.args), TOKENIZER)
    return folder


def test_folder_missing(capsys, tmp_path):
    line = one_line_error(capsys, *generate(tmp_path / "nowhere"))
    assert "does not exist" in line and "LLAMA3_CHECKPOINT" in line


def test_folder_missing_from_the_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA3_CHECKPOINT", str(tmp_path / "nowhere"))
    assert "does not exist" in one_line_error(capsys, "generate", "--impl", "solutions", "--max-new-tokens", "1")


def test_neither_layout(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    line = one_line_error(capsys, *generate(tmp_path / "empty"))
    assert "neither Meta's layout" in line and "Hugging Face" in line


def test_neither_layout_names_the_checkpoint_one_level_down(capsys, tmp_path):
    copy_tiny("tiny-llama3", tmp_path / "models" / "Meta-Llama-3-8B")
    line = one_line_error(capsys, *generate(tmp_path / "models"))
    assert "did you mean" in line and "Meta-Llama-3-8B" in line


def test_params_json_missing(capsys, meta):
    (meta / "params.json").unlink()
    line = one_line_error(capsys, *generate(meta))
    assert "params.json is missing" in line


@pytest.mark.parametrize("key", ["dim", "n_layers", "vocab_size", "rope_theta"])
def test_params_json_missing_a_key(capsys, meta, key):
    edit_json(meta / "params.json", **{key: None})
    line = one_line_error(capsys, *generate(meta))
    assert f"lacks {key}" in line and "params.json" in line


def test_params_json_not_json(capsys, meta):
    (meta / "params.json").write_text("{dim: 4096")
    assert "not valid JSON" in one_line_error(capsys, *generate(meta))


def test_config_json_missing_a_key(capsys, hf):
    edit_json(hf / "config.json", num_hidden_layers=None)
    line = one_line_error(capsys, *generate(hf))
    assert "lacks num_hidden_layers" in line and "config.json" in line


def test_config_json_of_another_rope(capsys, hf):
    edit_json(hf / "config.json", rope_scaling={"rope_type": "yarn", "factor": 4.0})
    assert "only Llama 3, 3.1 and 3.2" in one_line_error(capsys, *generate(hf))


def test_consolidated_pth_missing(capsys, meta):
    (meta / "consolidated.00.pth").unlink()
    line = one_line_error(capsys, *generate(meta))
    assert "consolidated.00.pth is missing" in line


def test_safetensors_missing(capsys, hf):
    (hf / "model.safetensors").unlink()
    assert "no model.safetensors" in one_line_error(capsys, *generate(hf))


def test_shard_named_in_the_index_missing(capsys, hf):
    (hf / "model.safetensors").rename(hf / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors",
                                            "model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}
    (hf / "model.safetensors.index.json").write_text(json.dumps(index))
    line = one_line_error(capsys, *generate(hf))
    assert "model-00002-of-00002.safetensors is missing" in line


def test_pytorch_bin_weights_only(capsys, hf):
    (hf / "model.safetensors").rename(hf / "pytorch_model.bin")
    assert "pytorch_model*.bin" in one_line_error(capsys, *generate(hf))


def test_vocab_size_differs_from_the_tokenizer(capsys, meta):
    edit_json(meta / "params.json", vocab_size=128000)
    line = one_line_error(capsys, *generate(meta))
    assert "vocab_size 128000" in line and "128256 tokens" in line


def test_truncated_pth(capsys, meta):
    path = meta / "consolidated.00.pth"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = one_line_error(capsys, *generate(meta))
    assert "truncated or corrupt" in line and "download it again" in line


def test_truncated_safetensors(capsys, hf):
    path = hf / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = one_line_error(capsys, *generate(hf))
    assert "truncated or corrupt" in line


def test_safetensors_with_a_garbled_header(capsys, hf):
    path = hf / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:16] = b"\xff" * 8
    path.write_bytes(bytes(data))
    assert "truncated or corrupt" in one_line_error(capsys, *generate(hf))


LFS = "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 16060617592\n".format("0" * 64)


def test_git_lfs_pointer_instead_of_the_pth(capsys, meta):
    (meta / "consolidated.00.pth").write_text(LFS)
    line = one_line_error(capsys, *generate(meta))
    assert "git-lfs pointer" in line and "git lfs pull" in line


def test_git_lfs_pointer_instead_of_the_safetensors(capsys, hf):
    (hf / "model.safetensors").write_text(LFS)
    assert "git-lfs pointer" in one_line_error(capsys, *generate(hf))


def test_git_lfs_pointer_instead_of_the_tokenizer(capsys, meta):
    (meta / "tokenizer.model").write_text(LFS)
    assert "git-lfs pointer" in one_line_error(capsys, *generate(meta))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_a_pth_that_would_run_code_is_refused(capsys, meta, tmp_path):
    marker = tmp_path / "the-pickle-ran"
    torch.save({"tok_embeddings.weight": torch.zeros(2), "payload": _RunsCode(str(marker))},
               meta / "consolidated.00.pth", pickle_protocol=2)
    line = one_line_error(capsys, *generate(meta))
    assert "weights_only=True" in line and "would run code" in line
    assert not marker.exists()


def test_a_pth_that_holds_no_dict_of_tensors(capsys, meta):
    torch.save([torch.zeros(2)], meta / "consolidated.00.pth")
    assert "does not hold a dict of tensors" in one_line_error(capsys, *generate(meta))


def test_shapes_that_disagree_with_params(capsys, meta):
    edit_json(meta / "params.json", n_kv_heads=4)
    line = one_line_error(capsys, *generate(meta))
    assert "layers.0.attention.wk.weight has shape [16, 32] but the config implies [32, 32]" in line


def test_more_layers_than_params_say(capsys, meta):
    edit_json(meta / "params.json", n_layers=1)
    assert "n_layers 1" in one_line_error(capsys, *generate(meta))


def test_fewer_layers_than_params_say(capsys, meta):
    edit_json(meta / "params.json", n_layers=3)
    assert "n_layers 3 but the weights hold layers 0 to 1" in one_line_error(capsys, *generate(meta))


def test_heads_that_do_not_divide(capsys, meta):
    edit_json(meta / "params.json", n_heads=5)
    assert "do not divide evenly" in one_line_error(capsys, *generate(meta))


@pytest.mark.parametrize("verb", ["generate", "bench"])
def test_unknown_dtype(capsys, verb):
    line = one_line_error(capsys, verb, "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3",
                          "--dtype", "float16")
    assert "unknown dtype 'float16'" in line and "bfloat16" in line


def test_prompt_longer_than_max_seq_len(capsys):
    line = one_line_error(capsys, "generate", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3",
                          "--prompt", " the" * 8200)
    assert "max_seq_len 8192" in line


def test_bad_rope_factor(capsys):
    line = one_line_error(capsys, "bench", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3.2",
                          "--rope-scale-factor", "-1")
    assert "not a positive number" in line


def test_convert_refuses_a_folder_inside_the_repository_or_not_empty(capsys, tmp_path):
    from grader.paths import ROOT

    line = one_line_error(capsys, "checkpoint", "convert", "--from", MODELS / "tiny-llama3", "--to-layout", "hf",
                          "--out", ROOT / "fixtures" / "tmp-hf")
    assert "inside the kit's repository" in line and not (ROOT / "fixtures" / "tmp-hf").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert "not empty" in one_line_error(capsys, "checkpoint", "make", "--preset", "tiny-llama3",
                                         "--out", tmp_path / "full")


def test_the_installed_command_prints_one_line_and_exits_2(tmp_path):
    """The same through a real process: no traceback reaches the terminal."""
    env = {k: v for k, v in os.environ.items() if k != "LLAMA3_CHECKPOINT"}
    code = "import sys; from grader.cli import main; sys.argv[0] = 'llama3-grader'; main()"
    done = subprocess.run([sys.executable, "-c", code, "checkpoint", "verify", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "does not exist" in done.stderr and "Traceback" not in done.stderr
