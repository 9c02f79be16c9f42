"""`llama3-grader bench` on the tiny checkpoints: every key of its JSON report, sane figures, transformers side by side,
and clean errors. No speed is asserted anywhere: speeds belong to the bench's report, not to pass/fail."""

import importlib.util
import json
import statistics
import sys
import warnings

import pytest

from ckpt_kit import grader, one_line_error
from grader.cli import bench
from grader.paths import MODELS
from learners import exercises_from, tree

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture(scope="module")
def result():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LLAMA3_CHECKPOINT", raising=False)
        from grader.formats import checkpoint

        ck = checkpoint.load(MODELS / "tiny-llama3.2")
        with_transformers = importlib.util.find_spec("transformers") is not None
        return bench.measure(ck, "solutions", [128000, 1820, 4320, 311], new_tokens=3, repeats=2,
                             with_transformers=with_transformers)


def test_the_json_has_every_documented_key(result):
    for key in bench.JSON_KEYS:
        assert key in result
    assert result["prompt_tokens"] == 4 and result["new_tokens"] == 3 and result["repeats"] == 2
    assert len(result["rounds"]) == 2


def test_the_figures_are_positive_and_consistent(result):
    for key in ("prefill_ms", "decode_tok_s", "decode_nocache_tok_s", "kernel_bound_tok_s", "bandwidth_bound_tok_s"):
        assert result[key] > 0, key
    # all but the 5 norms are matrices
    assert result["checkpoint_bytes"] == result["weight_bytes_per_token"] + 48 * 2 * 5
    assert result["peak_rss_bytes"] > result["checkpoint_bytes"]
    per_round = [x["decode_tok_s"] / x["decode_nocache_tok_s"] for x in result["rounds"]]
    assert result["ratios"]["cached_vs_nocache"] == pytest.approx(statistics.median(per_round))  # paired, per round


def test_transformers_runs_on_the_same_weights(result):
    pytest.importorskip("transformers")
    hf = result["transformers"]
    assert hf["prefill_ms"] > 0 and hf["decode_tok_s"] > 0 and hf["version"]
    assert result["ratios"]["decode_vs_transformers"] > 0


def test_the_command_prints_one_json_object(capsys):
    assert grader("bench", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3", "--new-tokens", "2",
                  "--repeats", "1", "--no-transformers", "--threads", "1", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["transformers"] is None and out["threads"] == 1 and out["impl"] == "solutions"
    assert set(bench.JSON_KEYS) <= set(out)


def test_the_plain_report(capsys):
    assert grader("bench", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3", "--new-tokens", "2",
                  "--repeats", "1", "--no-transformers") == 0
    out = capsys.readouterr().out
    for words in ("prefill", "decode, KV cache", "decode, recomputing", "kernel bound", "bandwidth bound", "peak RSS"):
        assert words in out


def test_transformers_decodes_with_its_cache_like_the_reference():
    """The current cache API (no deprecation warning), and the cache really used: greedy tokens equal the
    reference's."""
    pytest.importorskip("transformers")
    import torch

    from grader.formats import checkpoint, hf_layout
    from solutions.ex12_generation import generate

    ck = checkpoint.load(MODELS / "tiny-llama3", torch.float32)
    model = hf_layout.transformers_model(ck.weights, ck.args)
    prompt = [128000, 1820, 4320, 311]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theirs = [t for t, _ in bench._hf_generate(model, prompt, 8)]
    assert theirs == [t for t, _ in generate(prompt, ck.weights, ck.args, 8)]


def test_the_pristine_stubs_are_not_started(capsys, tmp_path):
    """bench --impl exercises on stubs from grader/learner/stubs.zip, whatever the learner's exercises/ holds."""
    root = tree(tmp_path)
    with exercises_from(root):
        line = one_line_error(capsys, "bench", "--impl", "exercises", "--checkpoint", MODELS / "tiny-llama3",
                              "--new-tokens", "2", "--repeats", "1", "--no-transformers")
        assert "not started" in line and "--impl solutions" in line
        assert str(root) in sys.modules["exercises"].__file__


@pytest.mark.parametrize("option,value,words", [("--new-tokens", "1", "--new-tokens must be at least 2"),
                                                ("--repeats", "0", "--repeats must be at least 1"),
                                                ("--threads", "0", "--threads must be at least 1")])
def test_bad_options(capsys, option, value, words):
    assert words in one_line_error(capsys, "bench", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3",
                                   option, value)


def test_threads_are_restored_after_an_in_process_run(capsys):
    import torch

    before = torch.get_num_threads()
    assert grader("bench", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3", "--new-tokens", "2",
                  "--repeats", "1", "--no-transformers", "--threads", str(before + 1), "--json") == 0
    assert json.loads(capsys.readouterr().out)["threads"] == before + 1
    # the goldens rebuild bitwise only at the thread count they were built with
    assert torch.get_num_threads() == before
