"""The goldens and tiny checkpoints are what the builder makes: rebuilding reproduces them, verify notices any
change, and fixtures/ stays within its size budget."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from grader.engine import goldens
from grader.formats import presets
from grader.engine.compare import tolerance
from grader.errors import KitError
from grader.engine.models import tiny
from grader.paths import FIXTURES, GOLDENS, MODELS, ROOT, TINY_MODELS


def _specs(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(json.loads(f.read(n))["__metadata__"]["calls"])


REBUILD = ("import sys; from pathlib import Path; from grader.engine import goldens; "
           "from grader.engine.models import tiny; goldens.build(tiny(sys.argv[1]), Path(sys.argv[2]))")


def commands_to_run(items, tmp_path_factory) -> dict:
    """Each selected model's goldens rebuilt into a temporary folder, in a subprocess beside the session
    (tests/conftest.py)."""
    names = [item.callspec.params["name"] for item in items
             if item.originalname == "test_rebuilding_the_goldens_reproduces_the_committed_ones"]
    return {name: ([sys.executable, "-c", REBUILD, name, str(tmp_path_factory.mktemp("goldens"))], ROOT,
                   dict(os.environ)) for name in names}


# tiny-llama3.2's rebuild under -m slow: the quick one rebuilds every spec's calls on tiny-llama3, and the reference
# passes the committed goldens of both (test_grading)
@pytest.mark.parametrize("name", [pytest.param(name, marks=() if name == TINY_MODELS[0] else pytest.mark.slow)
                                  for name in TINY_MODELS])
def test_rebuilding_the_goldens_reproduces_the_committed_ones(name, ran):
    """Bitwise with the torch version and the CPU kernels that built them (goldens.kernels); elsewhere within each
    output's tolerance (summation orders change between releases and between CPUs), and tokens exactly."""
    out = ran(name)
    assert out.returncode == 0, out.stderr[-3000:]
    tmp_path = Path(out.args[-1])
    manifest = json.loads((tmp_path / goldens.MANIFEST).read_text())
    committed = json.loads((GOLDENS / name / goldens.MANIFEST).read_text())
    assert manifest["checkpoint"] == committed["checkpoint"]
    assert sorted(manifest["files"]) == sorted(committed["files"])
    bitwise = (manifest["torch"], manifest["kernels"]) == (committed["torch"], committed.get("kernels"))
    for file in committed["files"]:
        new, old = load_file(tmp_path / file), load_file(GOLDENS / name / file)
        calls = _specs(GOLDENS / name / file)
        assert _specs(tmp_path / file) == calls, file
        assert sorted(new) == sorted(old), file
        named = {f"{c['function']}/{c['case']}": c["tolerance"] for c in calls}  # each call's own tolerance
        for key in old:
            within = named["/".join(key.split("/")[:2])]
            if bitwise or within is None:
                assert torch.equal(new[key], old[key]), f"{file}: {key} differs"
            else:
                t = tolerance(old[key], within)
                torch.testing.assert_close(new[key], old[key], rtol=t.rtol, atol=t.atol, msg=f"{file}: {key}")


@pytest.mark.parametrize("name", TINY_MODELS)
def test_rebuilding_the_tiny_checkpoints_reproduces_them(name, tmp_path):
    presets.make(name, tmp_path / name)
    assert (json.loads((tmp_path / name / "params.json").read_text())
            == json.loads((MODELS / name / "params.json").read_text()))
    new = torch.load(tmp_path / name / "consolidated.00.pth", weights_only=True)
    old = torch.load(MODELS / name / "consolidated.00.pth", weights_only=True)
    assert list(new) == list(old)
    assert all(torch.equal(new[k], old[k]) for k in old)


def test_the_tiny_llama3_2_checkpoint_is_tied_like_metas():
    """Meta's 3.2 files keep output.weight, equal to tok_embeddings.weight, stored once."""
    w = torch.load(MODELS / "tiny-llama3.2" / "consolidated.00.pth", weights_only=True, mmap=True)
    assert torch.equal(w["output.weight"], w["tok_embeddings.weight"])
    assert w["output.weight"].untyped_storage().data_ptr() == w["tok_embeddings.weight"].untyped_storage().data_ptr()
    untied = torch.load(MODELS / "tiny-llama3" / "consolidated.00.pth", weights_only=True, mmap=True)
    assert not torch.equal(untied["output.weight"], untied["tok_embeddings.weight"])


def _verify(*folders) -> subprocess.CompletedProcess:
    """llama3-grader fixtures verify [folders]"""
    argv = ["fixtures", "verify", *map(str, folders)]
    return subprocess.run([sys.executable, "-c", f"from grader.cli import main; main({argv!r})"], capture_output=True,
                          text=True)


def test_fixtures_verify_passes_on_the_committed_goldens():
    result = _verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == len(TINY_MODELS)


def test_fixtures_verify_names_every_missing_or_altered_file(tmp_path):
    folder = tmp_path / "tiny-llama3"
    shutil.copytree(GOLDENS / "tiny-llama3", folder)
    (folder / "ex03_embeddings.safetensors").unlink()
    data = bytearray((folder / "ex04_rms_norm.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "ex04_rms_norm.safetensors").write_bytes(data)
    (folder / "ex05_qkv.safetensors").write_bytes(b"")
    result = _verify(folder)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any("ex03_embeddings.safetensors is missing" in line for line in lines)
    assert any("ex04_rms_norm.safetensors is altered" in line for line in lines)
    assert any("ex05_qkv.safetensors is altered" in line for line in lines)
    assert len([line for line in lines if line.startswith("FAIL")]) == 3


def test_a_corrupt_golden_is_a_one_line_error(tmp_path):
    folder = tmp_path / "g"
    shutil.copytree(GOLDENS / "tiny-llama3", folder)
    (folder / "ex04_rms_norm.safetensors").write_bytes(b"\x00" * 7)
    with pytest.raises(KitError) as e:
        goldens.read(folder, "ex04_rms_norm")
    assert "is corrupt" in str(e.value) and "\n" not in str(e.value)
    (folder / "ex04_rms_norm.safetensors").unlink()
    with pytest.raises(KitError, match="is missing"):
        goldens.read(folder, "ex04_rms_norm")


def test_manifest_records_checkpoint_tolerances_and_torch():
    for name in TINY_MODELS:
        manifest = json.loads((GOLDENS / name / goldens.MANIFEST).read_text())
        assert manifest["checkpoint"]["sha256"] == goldens.checkpoint_sha256(tiny(name).checkpoint.weights)
        assert manifest["checkpoint"]["dtype"] == "bfloat16" and manifest["torch"]
        assert all(f["tolerances"] or f == manifest["files"]["ex01_tokenizer.safetensors"]
                   for f in manifest["files"].values())


def test_fixtures_stay_within_50_mb():
    size = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert size < 50 * 2**20, f"fixtures/ is {size / 2**20:.1f} MB"
