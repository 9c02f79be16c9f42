"""Exercise 15's pictures and `llama3-grader explore`: each figure renders (a PNG that is not blank, the prompt's tokens
as tick labels, checked on the Figure's axes before saving), explore prints the tables and writes the four PNGs, and
every bad input is one line."""

import io

import pytest

from cli_kit import call
from grader import pictures
from grader.cli import explore
from grader.formats import checkpoint
from solutions import ex15_experiments
from solutions.ex11_forward import forward

imread = pytest.importorskip("matplotlib.image", reason="the pictures extra: pip install -e \".[pictures]\"").imread

PROMPT = "the answer to the ultimate question of life, the universe, and everything is "


@pytest.fixture(scope="module")
def results():
    ck = checkpoint.load(None)  # tiny-llama3
    return {r.number: r for r in explore.explore(ex15_experiments, forward, ck, PROMPT, sorted(explore.NAMES),
                                                 layer=1, head=2, k=3)}, ck


def _pixels_vary(png: bytes) -> bool:
    image = imread(io.BytesIO(png))  # [height, width, channels]
    return float(image[..., :3].std()) > 0.05


def test_every_picture_renders_with_the_tokens_as_tick_labels(results):
    found, ck = results
    labels = [pictures.label(ck.tokenizer.decode([i])) for i in ck.tokenizer.encode(PROMPT)]
    for number, r in found.items():
        fig = r.draw()
        png = pictures.png(fig)
        assert png.startswith(b"\x89PNG") and _pixels_vary(png), f"{r.file_name} is blank"
        ax = fig.axes[0]
        if number == 1:
            assert [t.get_text() for t in ax.get_xticklabels()] == labels
        if number in (1, 2, 3):
            assert [t.get_text() for t in ax.get_yticklabels()] == labels, r.file_name
        if number == 4:
            assert (len(fig.axes) == min(pictures.ROPE_PANELS, ck.args.head_dim // 2)
                    and fig.axes[0].get_title() == "pair 0")


def test_the_tables_have_a_line_per_token(results):
    found, ck = results
    n = len(ck.tokenizer.encode(PROMPT))
    for number in (1, 2, 3):
        assert len(found[number].table.splitlines()) == n
    assert found[4].table.splitlines()[0].startswith("  pair   0: 1 rad per position")


def test_tick_labels_show_whitespace_and_keep_dollars_literal():
    assert pictures.label("\n") == "\\n" and pictures.label("$5") == r"\$5" and pictures.label("") == "''"


def test_explore_writes_the_four_pngs(root, tmp_path, capsys):
    out = tmp_path / "pictures"
    assert call("explore", "--impl", "solutions", "--out", str(out), "--prompt", "Hello there, llama") == 0
    text = capsys.readouterr().out
    assert "attention, layer 1, head 2" in text and "without the causal mask" in text and "RoPE" in text
    assert sorted(p.name for p in out.iterdir()) == ["1-attention.png", "2-predictions.png", "3-unmasked.png",
                                                     "4-rope.png"]
    assert all(_pixels_vary(p.read_bytes()) for p in out.iterdir())


def test_explore_on_your_stub_says_not_started(root, tmp_path, capsys):
    assert call("explore", "1", "--out", str(tmp_path)) == 2
    assert "not started: implement attention_probs" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--layer", "9"], ["--head", "-1"], ["--top-k", "0"], ["--checkpoint", "/nonexistent"],
                                 ["7"]])
def test_bad_input_is_one_line(root, tmp_path, capsys, bad):
    assert call("explore", "--impl", "solutions", "--out", str(tmp_path), *bad) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
