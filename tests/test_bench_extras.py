"""`llama3-grader bench --int8` and `--ranks N` on the tiny checkpoints: every figure there, sane, and counted right.
(The 1B-shape figures are in docs/int8.md and docs/tensor-parallel.md, with the commands that give them.)"""

import json

import pytest

from ckpt_kit import grader
from grader.paths import MODELS

pytestmark = pytest.mark.usefixtures("clean_env")


def bench(capsys, *args) -> dict:
    assert grader("bench", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3", "--new-tokens", "3",
                  "--repeats", "2", "--json", *args) == 0
    return json.loads(capsys.readouterr().out)


def test_int8_against_bf16(capsys):
    r = bench(capsys, "--int8")
    for model in ("bf16", "int8"):
        for key in ("decode_tok_s", "prefill_ms", "bandwidth_bound_tok_s", "weight_bytes_per_token", "peak_rss_bytes",
                    "decode_vs_bandwidth_bound"):
            assert r[model][key] > 0, (model, key)
    assert len(r["rounds"]) == 2 and r["quantize_s"] > 0
    # every matrix in int8 (one byte a weight) plus one float32 scale a row, against two bytes a weight
    assert 0.5 < r["ratios"]["int8_vs_bf16_bytes_per_token"] < 0.6
    assert r["ratios"]["int8_vs_bf16_decode"] > 0 and r["ratios"]["int8_vs_bf16_peak_rss"] > 0


def test_int8_plain_report(capsys):
    assert grader("bench", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3", "--new-tokens", "2",
                  "--repeats", "1", "--int8") == 0
    out = capsys.readouterr().out
    for words in ("decode, KV cache", "bandwidth bound", "decode / bound", "bytes per token", "peak RSS (alone)",
                  "quantizing took"):
        assert words in out


def test_ranks_counts_the_collectives(capsys):
    r = bench(capsys, "--ranks", "2")
    assert r["threads_per_rank"] == 1 and len(r["rounds"]) == 2
    for key in ("1_ranks", "2_ranks"):
        assert r[key]["decode_tok_s"] > 0 and r[key]["prefill_ms"] > 0 and 0 <= r[key]["collective_share"] < 1
        assert r[key]["collectives_per_token"] == 2 * 2 + 2  # two all-reduces a layer, the embedding's, the gather
    assert r["speedup"] > 0


def test_ranks_that_do_not_split_the_model(capsys):
    from ckpt_kit import one_line_error

    assert "use --ranks 1, 2, 4" in one_line_error(capsys, "bench", "--impl", "solutions", "--checkpoint",
                                                   MODELS / "tiny-llama3", "--ranks", "3")


def test_int8_and_ranks_together_are_one_line(capsys):
    from ckpt_kit import one_line_error

    assert "--int8 and --ranks are two benches" in one_line_error(capsys, "bench", "--impl", "solutions",
                                                                   "--checkpoint", MODELS / "tiny-llama3", "--int8",
                                                                   "--ranks", "2")
