"""Tensor parallelism in the kit: the reference on 2 and 4 ranks gives the single-process logits to float32 noise and
the same greedy tokens; Meta's multi-shard layout, made by `checkpoint make --shards 8` on a small 70B-like shape,
loads merged in one process, reshards to any rank count, runs on ranks, and is checked file by file by
`checkpoint verify`."""

import os
import shutil
import sys

import pytest
import torch

from ckpt_kit import grader, one_line_error
from cli_kit import UNSET
from grader.engine import ranks
from grader.specs import ex17_tensor_parallel as spec17
from grader.specs.outputs import LOGITS_STRIDE
from grader.engine.compare import TOLERANCES, mismatch
from grader.errors import KitError
from grader.formats import checkpoint, shards
from grader.paths import MODELS, ROOT
from solutions import ex11_forward, ex12_generation, ex17_tensor_parallel as tp

PROMPT = [128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861]


@pytest.fixture(scope="module", autouse=True)
def close_ranks():
    yield
    ranks.close_all()


def on_ranks(folder, world_size, job, fn, **kwargs):
    return ranks.run(world_size, job, fn, {"folder": str(folder), **kwargs})


@pytest.mark.parametrize("name,world_size", [("tiny-llama3", 2), ("tiny-llama3", 4), ("tiny-llama3.2", 2)])
def test_the_reference_on_ranks_gives_the_single_process_logits_and_tokens(name, world_size):
    ck = checkpoint.load(MODELS / name)
    weights = checkpoint.cast(ck.weights, "float32")
    tokens = torch.tensor(PROMPT)
    single = ex11_forward.forward(tokens, weights, ck.args)  # [seq, vocab_size]
    for rank, got in enumerate(on_ranks(MODELS / name, world_size, spec17.rank_forward, tp.parallel_forward,
                                        dtype="float32", tokens=tokens)):
        report = mismatch(f"rank {rank}'s logits", got["columns"], single[:, ::LOGITS_STRIDE],
                          TOLERANCES["float32 layers"])
        assert report is None, report
    want = [t for t, _ in ex12_generation.generate(PROMPT, weights, ck.args, 12)]
    got = on_ranks(MODELS / name, world_size, spec17.rank_generate, tp.parallel_generate, dtype="float32",
                   prompt_ids=PROMPT, max_new_tokens=12, stop_tokens=[])
    assert all(g["tokens"] == want for g in got)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """The tiny-llama3-70b preset in 8 files as Meta ships 70B, and in one file."""
    base = tmp_path_factory.mktemp("shards")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LLAMA3_CHECKPOINT", raising=False)
        assert grader("checkpoint", "make", "--preset", "tiny-llama3-70b", "--shards", "8", "--out", base / "mp8") == 0
        assert grader("checkpoint", "make", "--preset", "tiny-llama3-70b", "--out", base / "mp1") == 0
    return base / "mp8", base / "mp1"


def test_make_writes_8_files_each_holding_its_share(sharded):
    mp8, mp1 = sharded
    names = sorted(p.name for p in mp8.glob("consolidated.*.pth"))
    assert names == [f"consolidated.{i:02d}.pth" for i in range(8)]
    first = checkpoint.load_pth(mp8 / "consolidated.00.pth")
    assert tuple(first["layers.0.attention.wq.weight"].shape) == (16, 128)  # 2 of 16 heads of 8
    assert tuple(first["layers.0.attention.wk.weight"].shape) == (8, 128)  # 1 of 8 K/V heads
    assert tuple(first["layers.0.attention.wo.weight"].shape) == (128, 16)
    assert tuple(first["layers.0.feed_forward.w2.weight"].shape) == (128, 56)
    assert tuple(first["tok_embeddings.weight"].shape) == (16032, 128)  # vocab-parallel, as Llama 3's
    assert sum(p.stat().st_size for p in mp8.glob("*.pth")) < 1.05 * (mp1 / "consolidated.00.pth").stat().st_size


def test_8_files_load_merged_in_one_process_as_the_one_file(sharded):
    a, b = checkpoint.load(sharded[0]), checkpoint.load(sharded[1])
    assert a.args == b.args and a.weights.keys() == b.weights.keys()
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in b.weights)


@pytest.mark.parametrize("world_size", [1, 2, 4, 8])
def test_8_files_reshard_to_any_rank_count(sharded, world_size):
    args = checkpoint.load(sharded[1]).args
    files = checkpoint.read_shards(sharded[0], args)
    whole = checkpoint.load(sharded[1]).weights
    for rank in range(world_size):
        got = shards.reshard(files, args, rank, world_size)
        want = tp.shard_weights(whole, args, rank, world_size)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want), (rank, world_size)


def test_a_model_with_more_files_than_k_v_heads_merges_them_back(tmp_path):
    """tiny-llama3 in 4 files: each of its 2 K/V heads is repeated in 2 files; merged, they are 2 again."""
    out = tmp_path / "mp4"
    assert grader("checkpoint", "make", "--preset", "tiny-llama3", "--shards", "4", "--out", out) == 0
    assert tuple(checkpoint.load_pth(out / "consolidated.03.pth")["layers.0.attention.wk.weight"].shape) == (8, 32)
    merged, one = checkpoint.load(out), checkpoint.load(MODELS / "tiny-llama3")
    assert all(torch.equal(merged.weights[k], one.weights[k]) for k in one.weights)


def test_the_reference_on_2_ranks_of_the_8_files_gives_the_single_process_logits(sharded):
    ck = checkpoint.load(sharded[1])
    single = ex11_forward.forward(torch.tensor(PROMPT), checkpoint.cast(ck.weights, "float32"), ck.args)
    got = on_ranks(sharded[0], 2, spec17.rank_forward, tp.parallel_forward, dtype="float32",
                   tokens=torch.tensor(PROMPT))
    assert mismatch("logits", got[0]["columns"], single[:, ::LOGITS_STRIDE], TOLERANCES["float32 layers"]) is None


def test_a_missing_shard_and_misshapen_shards_are_one_line_errors(sharded, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(sharded[0], folder)
    (folder / "consolidated.03.pth").unlink()
    with pytest.raises(KitError, match=r"consolidated.03.pth is missing or misnamed; download every shard"):
        checkpoint.load(folder)
    (folder / "consolidated.07.pth").rename(folder / "consolidated.03.pth")  # 7 files of a model cut in 8
    with pytest.raises(KitError) as e:
        checkpoint.load(folder)
    assert "there are 7 consolidated.*.pth files, but each holds 1/8 of the model" in str(e.value)
    assert "\n" not in str(e.value)


def test_shards_too_large_to_merge_are_refused_naming_the_rank_count(sharded, monkeypatch):
    monkeypatch.setattr(checkpoint, "available_memory", lambda: 10_000_000)
    with pytest.raises(KitError) as e:
        checkpoint.load(sharded[0])
    message = str(e.value)
    assert ("8 consolidated.*.pth shards" in message and "llama3-grader generate --ranks 8" in message
            and "\n" not in message)


def test_make_refuses_a_shard_count_the_model_does_not_split_over(capsys, tmp_path):
    line = one_line_error(capsys, "checkpoint", "make", "--preset", "tiny-llama3", "--shards", "3",
                          "--out", tmp_path / "x")
    assert "does not split over 3 ranks" in line and "--shards 1, 2, 4" in line
    assert not (tmp_path / "x").exists()


def test_verify_checks_every_shard_against_meta_s_70b_checklist(sharded, tmp_path, capsys):
    """With Meta's own 70B checklist.chk, every shard is named: those whose md5 differs, one missing, one extra."""
    from grader.formats import verify

    folder = tmp_path / "70b"
    shutil.copytree(sharded[0], folder)
    meta = verify.releases()["Meta-Llama-3-70B"]["files"]  # Meta's checklist.chk, file for file
    (folder / "checklist.chk").write_text("".join(f"{h['md5']}  {name}\n" for name, h in meta.items()))
    (folder / "consolidated.03.pth").unlink()
    shutil.copy(folder / "consolidated.00.pth", folder / "consolidated.08.pth")

    r = verify.verify(folder, show_progress=False, remember=False)
    by_name = {f["name"]: f for f in r["files"]}
    assert r["verdict"] == "differs" and not r["ok"]
    assert [n for n in by_name if n.startswith("consolidated")] == [f"consolidated.{i:02d}.pth" for i in range(9)]
    assert by_name["consolidated.03.pth"]["md5"] is None
    assert by_name["consolidated.08.pth"].get("extra")
    assert all(by_name[f"consolidated.{i:02d}.pth"]["ok"] is False for i in range(9))
    problems = "\n".join(r["problems"])
    assert "consolidated.03.pth is listed in checklist.chk but missing" in problems
    assert "consolidated.08.pth is not in checklist.chk, which lists 8 consolidated.*.pth shards" in problems
    assert ("consolidated.05.pth has md5" in problems
            and "but checklist.chk says dbc1b3475de7e2a1b1dbdc69f67d39cd" in problems)
    report = verify.report(r)
    assert "EXTRA    consolidated.08.pth" in report and "MISSING  consolidated.03.pth" in report


def test_verify_checks_the_shapes_of_every_shard(sharded, tmp_path):
    from grader.formats import verify

    r = verify.verify(sharded[0], show_progress=False, remember=False)
    assert r["ok"] and r["shapes"]["checked"] and "8 shards of 21 tensors each" in r["shapes"]["note"]
    folder = tmp_path / "bad"
    shutil.copytree(sharded[0], folder)
    (folder / "checklist.chk").unlink()
    share = checkpoint.load_pth(folder / "consolidated.02.pth")
    share = {k: v.clone() for k, v in share.items()}
    share["layers.1.attention.wv.weight"] = share["layers.1.attention.wv.weight"][:4].clone()
    torch.save(share, folder / "consolidated.02.pth")
    r = verify.verify(folder, show_progress=False, remember=False)
    assert r["shapes"]["problems"] == ["consolidated.02.pth: layers.1.attention.wv.weight has shape [4, 128] but 8 "
                                       "shards of this model give [8, 128]"]


def _generate(capsys, *args) -> dict:
    import json

    assert grader("generate", "--impl", "solutions", "--checkpoint", MODELS / "tiny-llama3", "--json", *args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("n", ["2", "4"])
def test_generate_on_ranks_says_what_generate_says(capsys, n):
    single, parallel = _generate(capsys), _generate(capsys, "--ranks", n)
    assert parallel["ranks"] == int(n) and parallel["prompt_ids"] == single["prompt_ids"]
    assert parallel["generated_ids"] == single["generated_ids"] and parallel["text"] == single["text"]


def commands_to_run(items, tmp_path_factory) -> dict:
    """torchrun's generate below, beside the session (tests/conftest.py), with no checkpoint or RoPE override from the
    environment and an empty kit cache."""
    if "test_generate_under_torchrun_says_what_generate_says" not in {item.originalname for item in items}:
        return {}
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "grader.cli", "generate",
            "--distributed", "--impl", "solutions", "--checkpoint", str(MODELS / "tiny-llama3"), "--json"]
    clean = {k: v for k, v in os.environ.items() if k not in UNSET + ("LLAMA3_ROPE_SCALE_FACTOR",)}
    return {"torchrun": (argv, ROOT, {**clean, "LLAMA3_KIT_CACHE": str(tmp_path_factory.mktemp("torchrun"))})}


@pytest.mark.usefixtures("clean_env")
def test_generate_under_torchrun_says_what_generate_says(capsys, ran):
    """The documented command for several machines, here on one: torchrun starts 2 processes, each one rank."""
    import json

    single = _generate(capsys)
    done = ran("torchrun")
    assert done.returncode == 0, done.stderr[-2000:]
    out = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(out) == 1 and out[0]["ranks"] == 2 and out[0]["generated_ids"] == single["generated_ids"]


@pytest.mark.usefixtures("clean_env")
def test_generate_on_ranks_that_do_not_split_the_model_or_without_torchrun_is_one_line(capsys):
    assert "does not split over 3 ranks" in one_line_error(capsys, "generate", "--impl", "solutions", "--ranks", "3",
                                                           "--checkpoint", MODELS / "tiny-llama3")
    assert "torchrun" in one_line_error(capsys, "generate", "--impl", "solutions", "--distributed",
                                        "--checkpoint", MODELS / "tiny-llama3")
