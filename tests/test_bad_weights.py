"""Bad weights are named, never blamed on the learner and never passed silently: values that are not finite, a tensor of
another dtype, and Meta's shards checked for count, order and dtype, the same in one process and under --ranks."""

import json
import shutil

import numpy as np
import pytest
import torch

from ckpt_kit import copy_tiny, grader, one_line_error
from cli_kit import call
from grader.formats import presets
from learners import MODULES, exercises_from, solution, tree

pytestmark = pytest.mark.usefixtures("clean_env")

WQ = "layers.0.attention.wq.weight"


def generate(folder, *extra):
    return ("generate", "--impl", "solutions", "--checkpoint", folder, "--max-new-tokens", "2", *extra)


def rewrite(path, change) -> None:
    """Load a .pth whole, change its dict of tensors, save it under the same name."""
    weights = {k: v.clone() for k, v in torch.load(path, weights_only=True).items()}
    change(weights)
    torch.save(weights, path)


def poison(value):
    def change(weights):
        weights[WQ][1, 2] = value
    return change


@pytest.fixture
def meta(tmp_path):
    return copy_tiny("tiny-llama3", tmp_path / "meta")


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("extra", [(), ("--json",), ("--ranks", "2")])
def test_generate_refuses_weights_that_are_not_finite(capsys, meta, value, extra):
    rewrite(meta / "consolidated.00.pth", poison(value))
    line = one_line_error(capsys, *generate(meta, *extra))
    assert WQ in line and "NaN or infinite" in line and "checkpoint verify" in line and "raised" not in line


def test_verify_reports_weights_that_are_not_finite(capsys, meta):
    rewrite(meta / "consolidated.00.pth", poison(float("nan")))
    assert grader("checkpoint", "verify", meta) == 1
    assert WQ in capsys.readouterr().out
    assert grader("checkpoint", "verify", meta, "--json") == 1
    result = strict_json(capsys.readouterr().out)
    assert result["verdict"] == "differs" and any(WQ in p and "NaN" in p for p in result["problems"])


def test_an_imported_gguf_with_nan_is_refused(capsys, tmp_path):
    from gguf_kit import write_gguf

    write_gguf(tmp_path / "nan.gguf", poison="blk.0.attn_norm.weight")
    line = one_line_error(capsys, "checkpoint", "import-gguf", tmp_path / "nan.gguf", "--out", tmp_path / "out")
    assert "blk.0.attn_norm.weight" in line and "NaN" in line and not (tmp_path / "out").exists()


def test_json_stays_json_when_the_learner_s_logits_are_nan(tmp_path, monkeypatch, capsys):
    nan_generate = solution("ex12_generation") + (
        "\n\n_generate = generate\n\n\ndef generate(*args, **kwargs):\n"
        "    for token, logits in _generate(*args, **kwargs):\n        yield token, logits * float('nan')\n")
    root = tree(tmp_path, {**{m: solution(m) for m in MODULES}, "ex12_generation": nan_generate})
    monkeypatch.setenv("LLAMA3_KIT_ROOT", str(root))
    with exercises_from(root):
        assert call("generate", "--impl", "exercises", "--max-new-tokens", "2", "--json") == 0
    out = strict_json(capsys.readouterr().out)
    assert out["top10"] and all(value is None for _, value in out["top10"])


def test_one_tensor_of_another_dtype_is_named(capsys, meta):
    def to_float32(weights):
        weights[WQ] = weights[WQ].float()
    rewrite(meta / "consolidated.00.pth", to_float32)
    line = one_line_error(capsys, *generate(meta))
    assert f"{WQ} is float32" in line and "bfloat16" in line and "raised" not in line
    assert grader("checkpoint", "verify", meta) == 1
    assert f"{WQ} is float32" in capsys.readouterr().out


# --- Meta's shards ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def four_shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("made") / "tiny-70b"
    presets.make("tiny-llama3-70b", folder, tokenizer=presets.Path(__file__).parent.parent / "fixtures" / "tokenizer"
                 / "tokenizer.model", n_shards=4)
    return folder


@pytest.fixture
def shards(four_shards, tmp_path):
    return shutil.copytree(four_shards, tmp_path / "shards")


def shard(folder, i):
    return folder / f"consolidated.{i:02d}.pth"


def refusals(capsys, folder, *extra):
    """The one line of generate and the outcome of verify on the folder."""
    line = one_line_error(capsys, *generate(folder, *extra))
    assert grader("checkpoint", "verify", folder) == 1
    return line, capsys.readouterr().out


def test_three_of_four_shards(capsys, shards):
    shard(shards, 3).unlink()
    for said in refusals(capsys, shards):
        assert "3 consolidated.*.pth" in said and "4" in said and "consolidated.03.pth" in said


def test_two_of_four_shards(capsys, shards):
    shard(shards, 2).unlink()
    shard(shards, 3).unlink()
    for said in refusals(capsys, shards):
        assert "2 consolidated.*.pth" in said and "consolidated.02.pth" in said


def test_an_extra_shard(capsys, shards):
    shutil.copyfile(shard(shards, 3), shard(shards, 4))
    for said in refusals(capsys, shards):
        assert "5 consolidated.*.pth" in said and "consolidated.04.pth" in said


def test_swapped_shards_are_named_by_the_names_they_were_saved_under(capsys, shards):
    shard(shards, 0).rename(shards / "tmp")
    shard(shards, 1).rename(shard(shards, 0))
    (shards / "tmp").rename(shard(shards, 1))
    for said in refusals(capsys, shards):
        assert "consolidated.00.pth was saved as consolidated.01.pth" in said


def test_a_shard_that_is_a_folder(capsys, shards):
    shard(shards, 2).unlink()
    shard(shards, 2).mkdir()
    for said in refusals(capsys, shards):
        assert "consolidated.02.pth is a folder" in said


@pytest.mark.parametrize("extra", [(), ("--ranks", "2")])
def test_shards_of_two_dtypes(capsys, shards, extra):
    def to_float32(weights):
        for name in weights:
            weights[name] = weights[name].float()
    rewrite(shard(shards, 1), to_float32)
    line = one_line_error(capsys, *generate(shards, *extra))
    assert "consolidated.01.pth" in line and "float32" in line and "bfloat16" in line and "gloo" not in line.lower()


def test_the_shards_as_made_pass(capsys, shards):
    assert grader(*generate(shards)) == 0
    assert grader("checkpoint", "verify", shards) == 0


def test_nan_in_a_numpy_view_is_still_found():
    from grader.formats import checkpoint

    t = torch.from_numpy(np.array([[1.0, np.nan]], dtype=np.float32)).to(torch.bfloat16)
    assert checkpoint.nonfinite({"x": t, "y": torch.ones(3)}) == {"x": 1}
