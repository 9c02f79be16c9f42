"""`llama3-grader bench --compile` (exercise 18): every figure of its report, sane, on the tiny checkpoint. The default
suite compiles with dynamo alone (grader/specs/compiled.py), in a second; the real compile (inductor's C++ on a CPU,
a minute) is `-m slow`, and CUDA's (CUDA graphs, the floor) is `-m gpu`. No speed is asserted: speeds belong to the
bench's report."""

import json

import pytest
import torch

from ckpt_kit import grader, one_line_error
from grader.cli import bench_compile
from grader.formats import checkpoint
from grader.paths import MODELS
from grader.specs.compiled import counting_compile

pytestmark = pytest.mark.usefixtures("clean_env")
PROMPT = [128000, 1820, 4320, 311]


def check_figures(r: dict, device: str) -> None:
    for key in ("eager_tok_s", "compiled_tok_s", "exercise12_tok_s", "compile_s", "bandwidth_bound_tok_s",
                "kernel_bound_tok_s", "read_bandwidth_gb_s"):
        assert r[key] > 0, key
    assert r["device"] == device and r["new_tokens"] == 2 and len(r["rounds"]) == r["repeats"]
    weights = checkpoint.load(MODELS / "tiny-llama3").weights
    assert r["weight_bytes_per_token"] == sum(w.nbytes for name, w in weights.items()
                                              if w.dim() == 2 and name != "tok_embeddings.weight")
    for ratio in ("compiled_vs_eager", "compiled_vs_exercise12", "compiled_vs_bandwidth_bound"):
        assert r["ratios"][ratio] > 0, ratio
    assert r["launches_per_token"]["eager"] > 0 and r["launches_per_token"]["compiled"] > 0


def test_the_figures_of_a_run_compiled_by_dynamo_alone():
    """On the CPU, with torch.compile counted (dynamo's graph run eagerly): the same report as the real compile's."""
    ck = checkpoint.load(MODELS / "tiny-llama3")
    with counting_compile() as compiled:
        r = bench_compile.measure(ck, "solutions", PROMPT, new_tokens=2, repeats=2, device="cpu")
    assert compiled.asked == [{"fullgraph": True}] and compiled.report()["compiled_once"]
    check_figures(r, "cpu")
    assert r["floor"] is None and r["launches_per_token"]["what"] == "aten operators"
    assert "static step, compiled" in bench_compile.report(r) and "BELOW" not in bench_compile.report(r)


def test_compile_is_a_bench_of_its_own(capsys):
    line = one_line_error(capsys, "bench", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3", "--compile",
                          "--int8")
    assert "--compile is a bench of its own" in line


@pytest.mark.slow
def test_the_command_compiles_for_real(capsys):
    """inductor's generated C++ on the CPU, through the command: one JSON object."""
    assert grader("bench", "--compile", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3", "--new-tokens",
                  "2", "--repeats", "1", "--json") == 0
    check_figures(json.loads(capsys.readouterr().out), "cpu")


@pytest.mark.gpu
def test_on_a_gpu_it_says_where_it_stands_against_the_floor():
    """On CUDA: CUDA graphs (one graph launch per token), and the floor and aim of the bandwidth bound."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (a GPU)")
    r = bench_compile.measure(checkpoint.load(MODELS / "tiny-llama3"), "solutions", PROMPT, new_tokens=2, repeats=1,
                              device="cuda")
    check_figures(r, "cuda")
    assert r["floor"]["floor"] == 0.5 and r["floor"]["aim"] == 0.7 and r["coordinate_descent_tuning"]
    launched = r["launches_per_token"]
    assert launched["what"] == "kernel launches" and launched["compiled"] < launched["eager"], launched
    assert "of the bound (aim 70%)" in bench_compile.report(r)
