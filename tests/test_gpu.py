"""On a CUDA GPU: the reference and every correct variant pass every graded test with `--device cuda`, against the
CPU-computed goldens and their tolerances (TF32 off); generate and chat write the CPU's tokens in float32; bench,
explore and a notebook's device cell run there; code that pins the CPU is named. Every test here is marked gpu:
`pytest -m gpu` runs them where torch sees CUDA (scripts/gpu-check does, with more), and without CUDA they skip."""

import io
import json
import sys

import pytest
import torch

import plants
from ckpt_kit import grader, one_line_error
from cli_kit import kit
from learners import MODULES, by_exercise, exercises_from, grade, grade_all, solution, tree

GPU = "cuda"
pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("clean_env"),
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA GPU: torch sees none (run pytest -m gpu where there is one)")]
VARIANTS = plants.variants()


@pytest.fixture(autouse=True)
def no_standing_device(monkeypatch):
    monkeypatch.delenv("LLAMA3_KIT_DEVICE", raising=False)


def test_the_reference_passes_every_graded_test_on_the_gpu(tmp_path):
    results = grade(tree(tmp_path), "--impl", "solutions", "--device", GPU)
    failed = [r["nodeid"] + "\n" + r["message"] for r in results if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    passed = {e for e, rs in by_exercise(results).items() if any(r["outcome"] == "passed" for r in rs)}
    assert passed == set(MODULES)


@pytest.fixture(scope="module")
def variants_graded(tmp_path_factory) -> dict[str, list[dict]]:
    """name -> the graded results of that variant's exercise on the GPU, graded as test_tolerances grades them."""
    rounds = plants.rounds(VARIANTS.values())
    jobs = plants.round_trees(rounds, tmp_path_factory.mktemp, "variants", "--device", GPU)
    results = {}
    for round_, found in zip(rounds, grade_all(jobs)):
        results |= {plant.name: [r for r in found if r["exercise"] == plant.module] for plant in round_}
    return results


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_correct_variant_passes_on_the_gpu(variants_graded, name):
    own = variants_graded[name]
    failed = [r["nodeid"] + "\n" + r["message"] for r in own if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert any(r["outcome"] == "passed" for r in own), f"{name}: no graded test of {VARIANTS[name].module} passed"


def _generate(capsys, model: str, device: str, *extra: str) -> dict:
    from grader.paths import MODELS

    assert grader("generate", "--impl", "solutions", "--checkpoint", MODELS / model, "--max-new-tokens", "16",
                  "--device", device, "--json", *extra) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("model", ["tiny-llama3", "tiny-llama3.2"])
def test_generate_on_the_gpu_writes_the_cpus_tokens_in_float32(capsys, model):
    cpu = _generate(capsys, model, "cpu", "--dtype", "float32")
    gpu = _generate(capsys, model, GPU, "--dtype", "float32")
    assert len(cpu["generated_ids"]) == 16 and gpu["generated_ids"] == cpu["generated_ids"]
    assert gpu["device"] == GPU and gpu["peak_gpu_bytes"] >= gpu["checkpoint_bytes"]  # the bf16 weights are there
    bf16 = _generate(capsys, model, GPU)
    assert bf16["dtype"] == "bfloat16" and len(bf16["generated_ids"]) == 16


def _chat(capsys, monkeypatch, device: str) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO("What is the capital of France?\nAnd of Italy?\n"))
    assert grader("chat", "--impl", "solutions", "--max-new-tokens", "16", "--dtype", "float32",
                  "--device", device) == 0
    return capsys.readouterr().out


def test_chat_on_the_gpu_writes_the_cpus_replies_in_float32(capsys, monkeypatch):
    cpu, gpu = _chat(capsys, monkeypatch, "cpu"), _chat(capsys, monkeypatch, GPU)
    assert cpu.count("llama> ") == 2 and gpu == cpu


def test_bench_on_the_gpu_measures_both_contenders_and_the_bounds_there(capsys):
    pytest.importorskip("transformers")
    assert grader("bench", "--impl", "solutions", "--device", GPU, "--new-tokens", "4", "--repeats", "2", "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["device"] == GPU and r["device_name"].startswith(f"{GPU} (")
    for key in ("prefill_ms", "decode_tok_s", "decode_nocache_tok_s", "kernel_bound_tok_s", "bandwidth_bound_tok_s",
                "read_bandwidth_gb_s"):
        assert r[key] > 0, key
    assert r["peak_gpu_bytes"] >= r["checkpoint_bytes"] and r["transformers"]["peak_gpu_bytes"] >= r["checkpoint_bytes"]
    assert r["transformers"]["decode_tok_s"] > 0 and r["read_bytes"] > r["weight_bytes_per_token"]
    assert grader("bench", "--impl", "solutions", "--device", GPU, "--new-tokens", "2", "--repeats", "1") == 0
    out = capsys.readouterr().out
    assert "peak GPU memory" in out and "MiB tensor" in out and "peak RSS" not in out


def test_explore_on_the_gpu_gives_the_cpus_findings(capsys, tmp_path):
    """The attention table and the RoPE table as the CPU prints them; each position's most likely next token the
    same (on the tiny model its lead over the second is 0.07 or more, far above float32's noise; the others can swap
    places where they are within it)."""
    pytest.importorskip("matplotlib")
    from grader.cli import explore
    from grader.formats import checkpoint
    from solutions import ex15_experiments
    from solutions.ex11_forward import forward

    for device in ("cpu", GPU):
        assert grader("explore", "--impl", "solutions", "--device", device, "--out", str(tmp_path / device)) == 0
        assert len(list((tmp_path / device).glob("*.png"))) == 4
    ck = checkpoint.load(None)
    found = {device: explore.explore(ex15_experiments, forward, ck, explore.DEFAULT_PROMPT, [1, 2, 3, 4], device=device)
             for device in ("cpu", GPU)}
    for cpu, gpu in zip(found["cpu"], found[GPU]):
        if cpu.number in (1, 4):
            assert gpu.table == cpu.table, cpu.title
        else:
            assert top1(gpu.table) == top1(cpu.table), cpu.title


def top1(table: str) -> list[str]:
    """The most likely next token of each line of a predictions table: "  3  'is' -> ' the' 0.31 · ..." -> "' the'"."""
    return [line.split("->")[1].split(" · ")[0].rsplit(" ", 1)[0] for line in table.splitlines()]


def test_code_that_pins_the_cpu_is_named_on_the_gpu(tmp_path, capsys):
    from test_cli_devices import MASK_PINNED

    root = kit(tmp_path, solved=tuple(m for m in MODULES if m < "ex13"))
    (root / "exercises" / "ex07_attention.py").write_text(solution("ex07_attention") + MASK_PINNED)
    with exercises_from(root):
        line = one_line_error(capsys, "generate", "--impl", "exercises", "--device", GPU)
    assert f"your code made or moved a tensor to cpu while grading on {GPU}" in line, line


def test_a_notebooks_device_cell_picks_the_gpu(capsys, monkeypatch):
    from grader.cli.notebook import use_device

    monkeypatch.setenv("LLAMA3_KIT_DEVICE", "auto")  # and restored afterwards: use_device keeps its choice there
    assert use_device() == GPU and capsys.readouterr().out.startswith(f"device: {GPU} (")
