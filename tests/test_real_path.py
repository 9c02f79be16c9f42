"""With LLAMA3_CHECKPOINT set, the graded tests also run on that checkpoint: its goldens are built once with
solutions/ into a local cache, every exercise is graded on it, and the "42" facts are asserted only for
Meta-Llama-3-8B's shape. A tiny checkpoint in Hugging Face's layout stands in for the real one here."""

from pathlib import Path

import pytest

from grader.formats import hf_layout, writers
from grader.engine.models import tiny
from learners import grade, graded_in, grading_command, tree


def hf_folder(parent) -> Path:
    ck = tiny("tiny-llama3.2").checkpoint
    folder = parent / "Llama-3.2-tiny"
    writers.save_hf(folder, hf_layout.to_hf(ck.weights, ck.args, ck.tied), hf_layout.config(ck.args, ck.tied, ck.dtype),
                    hf_layout.params_json(ck.args))
    return folder


def commands_to_run(items, tmp_path_factory) -> dict:
    """The reference graded on the checkpoint, then the stubs on the same checkpoint, in one subprocess beside the
    session (tests/conftest.py)."""
    if not any(item.originalname == "test_the_reference_passes_on_the_checkpoint_and_its_goldens_are_built_once"
               for item in items):
        return {}
    tmp = tmp_path_factory.mktemp("real")
    env = {"LLAMA3_CHECKPOINT": str(hf_folder(tmp_path_factory.mktemp("hf"))), "LLAMA3_KIT_CACHE": str(tmp / "cache")}
    root = tree(tmp)
    # its tests on the tiny models are test_grading's; then the learner's stubs, graded on the same checkpoint
    return {"reference": grading_command([(root, ("--impl", "solutions", "-k", "real"))], env),
            "stubs": grading_command([(root, ("-k", "ex03"))], env)}


def test_the_reference_passes_on_the_checkpoint_and_its_goldens_are_built_once(ran):
    out, stubs = ran("reference"), ran("stubs")
    assert out.returncode == 0 and stubs.returncode == 0, out.stderr[-3000:] + stubs.stderr[-3000:]
    [results], [again] = graded_in(out.stdout, 1), graded_in(stubs.stdout, 1)
    real = [r for r in results if "[real" in r["nodeid"]]
    assert {r["exercise"] for r in real} >= {"ex03_embeddings", "ex08_multi_head_attention", "ex11_forward",
                                             "ex12_generation"}
    unused = [r for r in real if r["outcome"] == "skipped" and "has no golden calls" in r["message"]]
    # Meta's layout only; exercise 16's int8 forward, exercise 17's collectives and exercise 18's compiled steps on
    # the tiny models only
    assert {(r["exercise"], r["nodeid"].split("::")[1].split("[")[0]) for r in unused} == {
        ("ex02_checkpoint", "test_load_params"), ("ex02_checkpoint", "test_load_weights"),
        ("ex16_int8", "test_forward"), ("ex18_static_decode", "test_decode_step"),
        ("ex18_static_decode", "test_compile_step"),
        *(("ex17_tensor_parallel", f"test_parallel_{f}")
          for f in ("embed", "attention", "feed_forward", "forward", "generate"))}
    assert all(r["outcome"] == "passed" for r in real if r not in unused), [
        r["nodeid"] + "\n" + r["message"] for r in real if r["outcome"] != "passed"]
    built = list((Path(out.env["LLAMA3_KIT_CACHE"]) / "goldens").iterdir())
    assert len(built) == 1 and (built[0] / "manifest.json").is_file()
    assert (built[0] / "manifest.json").stat().st_mtime < stubs.started, "goldens were built again for the stubs"
    facts = [r for r in results if "the_real_model" in r["nodeid"]]
    assert facts and all(r["outcome"] == "skipped" and "Meta-Llama-3-8B" in r["message"] for r in facts)
    assert [r["status"] for r in again if "[real" in r["nodeid"]] == ["not started"]


def test_a_wrong_checkpoint_is_one_line(tmp_path):
    env = {"LLAMA3_CHECKPOINT": str(tmp_path / "missing"), "LLAMA3_KIT_CACHE": str(tmp_path / "cache")}
    with pytest.raises(AssertionError) as e:
        grade(tree(tmp_path), "-k", "ex03", env=env)
    assert "LLAMA3_CHECKPOINT:" in str(e.value) and "does not exist" in str(e.value)
