"""The verbs that run a model (generate, chat, explore, bench) take one choice of device, made as the grader makes it:
--device, else LLAMA3_KIT_DEVICE, else the CPU. A device that is not there is one line and exit code 2; what runs on
the CPU only (--ranks over gloo, --int8) says so; a learner's code that pins the CPU is named on a device. These run
in CI, which has no GPU: the runs on CUDA are in test_gpu.py."""

import argparse
import io
import json
import sys

import pytest
import torch

from ckpt_kit import grader, one_line_error
from cli_kit import kit
from grader import devices
from grader.cli import on_device
from learners import exercises_from, solution

pytestmark = pytest.mark.usefixtures("clean_env")

# each verb, with options that make it short on the tiny model
VERBS = {
    "generate": ("--max-new-tokens", "2"),
    "chat": ("--max-new-tokens", "2"),
    "explore": ("4",),
    "bench": ("--new-tokens", "2", "--repeats", "1", "--no-transformers", "--json"),
}
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.fixture(autouse=True)
def no_standing_device(monkeypatch):
    monkeypatch.delenv("LLAMA3_KIT_DEVICE", raising=False)


@NO_CUDA
@pytest.mark.parametrize("verb", VERBS)
def test_a_gpu_that_is_not_there_is_one_line(verb, capsys, monkeypatch):
    line = one_line_error(capsys, verb, "--impl", "solutions", "--device", "cuda", *VERBS[verb])
    assert "--device asks for cuda, but torch" in line and "use --device cpu" in line
    monkeypatch.setenv("LLAMA3_KIT_DEVICE", "cuda")
    assert "LLAMA3_KIT_DEVICE asks for cuda" in one_line_error(capsys, verb, "--impl", "solutions", *VERBS[verb])


@pytest.mark.parametrize("verb", VERBS)
def test_device_cpu_runs(verb, capsys, monkeypatch, tmp_path):
    if verb == "explore":
        pytest.importorskip("matplotlib", reason="the pictures extra: pip install -e \".[pictures]\"")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi\n"))
    extra = ("--out", str(tmp_path)) if verb == "explore" else ()
    assert grader(verb, "--impl", "solutions", "--device", "cpu", *VERBS[verb], *extra) == 0
    out = capsys.readouterr().out
    if verb == "bench":
        result = json.loads(out)
        assert result["device"] == "cpu" and result["peak_gpu_bytes"] is None and result["decode_tok_s"] > 0
        assert result["read_bytes"] == result["weight_bytes_per_token"]  # on the CPU the read pass reads the matrices
    elif verb == "explore":
        assert (tmp_path / "4-rope.png").is_file()
    elif verb == "chat":
        assert out.count("llama> ") == 1
    else:
        assert out.strip()


def test_generate_json_says_where_it_ran(capsys):
    assert grader("generate", "--impl", "solutions", "--max-new-tokens", "2", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "cpu" and out["peak_gpu_bytes"] is None and out["checkpoint_bytes"] > 0


CPU_ONLY = {"generate --ranks": ("generate", "--ranks", "2"), "--distributed": ("generate", "--distributed"),
            "bench --ranks": ("bench", "--ranks", "2"), "--int8": ("bench", "--int8")}


@pytest.mark.parametrize("args", CPU_ONLY.values(), ids=CPU_ONLY)
def test_what_runs_on_the_cpu_only_refuses_another_device_in_one_line(args, capsys):
    line = one_line_error(capsys, *args, "--impl", "solutions", "--device", "cuda")
    assert f"drop --device cuda, or drop {args[1]} to run on cuda" in line
    assert ("over gloo" if args[1] != "--int8" else "int8 kernels of the CPU") in line


def test_a_standing_choice_of_device_is_left_aside_by_the_ranks_with_a_line(monkeypatch, capsys):
    monkeypatch.setenv("LLAMA3_KIT_DEVICE", "cuda")
    assert on_device.choice(argparse.Namespace(device=None), "--ranks") == "cpu"
    assert on_device.choice(argparse.Namespace(device="cpu"), "--ranks") == "cpu"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "talking over gloo, so LLAMA3_KIT_DEVICE=cuda is left aside" in err[0]


MASK_PINNED = '''
def causal_mask(seqlen, start_pos=0, device=None):
    mask = torch.full((seqlen, seqlen), float("-inf"), device="cpu").triu(diagonal=1)
    return torch.hstack([torch.zeros(seqlen, start_pos, device="cpu"), mask])
'''


@pytest.mark.parametrize("verb", ["generate", "bench"])
def test_code_that_pins_the_cpu_is_named_in_one_line_on_a_device(verb, tmp_path, monkeypatch, capsys):
    """The meta device stands in for a GPU: the learner's mask made on the CPU meets the weights there."""
    solved = tuple(f"ex{n:02d}" for n in range(1, 13))
    root = kit(tmp_path, solved=tuple(m for m in _modules() if m[:4] in solved))
    (root / "exercises" / "ex07_attention.py").write_text(solution("ex07_attention") + MASK_PINNED)
    monkeypatch.setattr(devices, "choice", lambda name=None: "meta")
    with exercises_from(root):
        line = one_line_error(capsys, verb, "--impl", "exercises", "--device", "cuda", *VERBS[verb])
    assert "your code made or moved a tensor to cpu while grading on meta" in line, line
    assert "device=x.device" in line


def _modules() -> list[str]:
    from learners import MODULES

    return MODULES


def test_weights_on_a_device_are_never_held_in_a_wider_dtype():
    """bf16 run in float32 is held in bf16 and cast when read; a float32 checkpoint run in bf16 is held in bf16; ties
    stay one tensor (meta stands in for the device)."""
    from grader.formats import checkpoint
    from grader.paths import MODELS

    ck = checkpoint.load(MODELS / "tiny-llama3.2")
    up = on_device.weights(ck, torch.float32, "meta")
    assert isinstance(up, checkpoint.CastOnRead) and up["norm.weight"].dtype == torch.float32
    held = on_device.moved(ck.weights, "meta")
    assert held["output.weight"] is held["tok_embeddings.weight"] and held["norm.weight"].dtype == torch.bfloat16
    wide = checkpoint.load(MODELS / "tiny-llama3.2", torch.float32)
    down = on_device.weights(wide, torch.bfloat16, "meta")
    assert isinstance(down, dict) and down["layers.0.attention.wq.weight"].dtype == torch.bfloat16
    assert down["layers.0.attention.wq.weight"].device.type == "meta"
    assert on_device.weights(ck, torch.bfloat16, "cpu") is ck.weights  # the CPU: memory-mapped, as before
