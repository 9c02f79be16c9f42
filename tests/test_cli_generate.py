"""`llama3-grader generate`: under the text, what a learner needs to read it (random weights write random text; in
bf16 compare with --dtype float32), in English and Chinese; --json stays one object."""

import json

from ckpt_kit import grader

import pytest

pytestmark = pytest.mark.usefixtures("clean_env")


def test_on_a_tiny_checkpoint_it_says_the_text_is_random_and_how_to_compare(capsys):
    assert grader("generate", "--impl", "solutions", "--max-new-tokens", "2") == 0
    err = capsys.readouterr().err
    assert "random weights, so the text is random too" in err
    assert "bfloat16" in err and "--dtype float32, where the tokens must match" in err
    assert grader("generate", "--impl", "solutions", "--max-new-tokens", "2", "--dtype", "float32") == 0
    err = capsys.readouterr().err
    assert "random weights" in err and "bfloat16" not in err


def test_the_notes_in_chinese_and_not_in_json(capsys, monkeypatch):
    monkeypatch.setenv("LLAMA3_KIT_LANG", "zh")
    assert grader("generate", "--impl", "solutions", "--max-new-tokens", "2") == 0
    assert "权重随机" in capsys.readouterr().err
    assert grader("generate", "--impl", "solutions", "--max-new-tokens", "2", "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["generated_ids"] and err == ""
