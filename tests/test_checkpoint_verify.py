"""`llama3-grader checkpoint verify`: md5 against the folder's checklist.chk and Meta's known checklists, the genuine
model named or exactly what differs, shapes against params, and the outcome remembered for the scoreboard."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from ckpt_kit import TOKENIZER, copy_tiny, edit_json, grader
from grader.formats import presets, verify
from grader.paths import MODELS

pytestmark = pytest.mark.usefixtures("clean_env")

# Meta-Llama-3-8B/params.json, byte for byte, with its odd three-space indent before "dim"
# (md5 97a077050362a19d6c929eb6509fbc64, docs/facts.md §7)
LLAMA3_8B_PARAMS = ('{\n   "dim": 4096,\n    "n_layers": 32,\n    "n_heads": 32,\n    "n_kv_heads": 8,\n'
                    '    "vocab_size": 128256,\n    "multiple_of": 1024,\n    "ffn_dim_multiplier": 1.3,\n'
                    '    "norm_eps": 1e-05,\n    "rope_theta": 500000.0\n}')


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def made(tmp_path):
    """A tiny checkpoint as `checkpoint make` writes it: Meta's layout with tokenizer.model and checklist.chk."""
    folder = tmp_path / "made"
    presets.make("tiny-llama3", folder, tokenizer=TOKENIZER, checklist=True)
    return folder


def run_verify(capsys, folder, *extra) -> tuple[int, dict]:
    code = grader("checkpoint", "verify", folder, "--json", *extra)
    return code, json.loads(capsys.readouterr().out)


def test_the_shipped_checklists_are_meta_s():
    known = verify.releases()
    assert known["Meta-Llama-3-8B"]["files"]["consolidated.00.pth"]["md5"] == "a56be2a6b14283a2dd02ac7b89c8ea8f"
    assert known["Meta-Llama-3-8B"]["official"] and not known["Llama3.2-1B"]["official"]
    assert len([f for f in known["Meta-Llama-3-70B"]["files"] if f.endswith(".pth")]) == 8
    assert hashlib.md5(LLAMA3_8B_PARAMS.encode()).hexdigest() == known["Meta-Llama-3-8B"]["files"]["params.json"]["md5"]
    assert md5(TOKENIZER) == known["Meta-Llama-3-8B"]["files"]["tokenizer.model"]["md5"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "llama3"
    for name in ("Meta-Llama-3-8B", "Meta-Llama-3-8B-Instruct", "Meta-Llama-3-70B"):
        if (shared / f"{name}.checklist.chk").is_file():  # Meta's originals, where this checkout has them (CI)
            original = verify.parse_checklist(shared / f"{name}.checklist.chk")
            assert original == {f: h["md5"] for f, h in known[name]["files"].items()}


def test_a_folder_that_matches_its_checklist(capsys, made):
    code, r = run_verify(capsys, made)
    assert code == 0
    assert r["verdict"] == "matches checklist" and r["ok"] and r["model"] is None
    assert [f["name"] for f in r["files"]] == ["consolidated.00.pth", "params.json", "tokenizer.model"]
    assert all(f["ok"] for f in r["files"])
    assert r["shapes"]["checked"] and not r["shapes"]["problems"] and r["shapes"]["tensors"] == 21


def test_a_changed_byte_is_named_with_both_md5s(capsys, made):
    expected = md5(made / "consolidated.00.pth")
    with open(made / "consolidated.00.pth", "r+b") as f:
        f.seek(-100, 2)  # inside the last tensor's data: the file still loads, only md5 can tell
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 1]))
    code, r = run_verify(capsys, made)
    assert code == 1 and r["verdict"] == "differs" and not r["ok"]
    got = md5(made / "consolidated.00.pth")
    assert r["problems"] == [f"consolidated.00.pth has md5 {got} but checklist.chk says {expected}: download it again"]
    assert r["summary"].startswith("1 problem(s): consolidated.00.pth has md5")


def test_a_file_listed_but_missing(capsys, made):
    (made / "tokenizer.model").unlink()
    code, r = run_verify(capsys, made)
    assert code == 1 and "tokenizer.model is listed in checklist.chk but missing" in r["problems"][0]


def test_no_checklist_and_no_known_release(capsys, tmp_path):
    folder = copy_tiny("tiny-llama3.2", tmp_path / "m")
    code, r = run_verify(capsys, folder)
    assert code == 0 and r["verdict"] == "not identified" and r["ok"] and r["checklist"] is None
    assert "no checklist.chk" in r["summary"]


def test_genuine_params_and_tokenizer_but_other_weights(capsys, tmp_path):
    """What a corrupt 8B download looks like: everything is Meta-Llama-3-8B's except consolidated.00.pth."""
    folder = tmp_path / "Meta-Llama-3-8B"
    folder.mkdir()
    (folder / "params.json").write_text(LLAMA3_8B_PARAMS)
    shutil.copy(TOKENIZER, folder / "tokenizer.model")
    shutil.copy(MODELS / "tiny-llama3" / "consolidated.00.pth", folder)
    code, r = run_verify(capsys, folder)
    assert code == 1 and r["verdict"] == "differs" and r["model"] is None
    weights_md5 = md5(folder / "consolidated.00.pth")
    assert (f"params.json, tokenizer.model are Meta-Llama-3-8B's, but consolidated.00.pth has md5 {weights_md5} "
            "where Meta-Llama-3-8B's has a56be2a6b14283a2dd02ac7b89c8ea8f") in r["problems"]
    assert any("Meta-Llama-3-8B-Instruct's has e08a6282933da5a9cb701f0461c7cc2f" in p for p in r["problems"])
    assert any(p.startswith("shapes: ") for p in r["problems"])  # the tiny tensors do not fit 8B's params


def test_a_genuine_release_is_named(capsys, made, monkeypatch):
    """The real files cannot be had here: teach verify a release whose checksums are the tiny checkpoint's."""
    files = {name: {"md5": md5(made / name)} for name in ("consolidated.00.pth", "params.json", "tokenizer.model")}
    known = {**verify.releases(), "Meta-Llama-3-Tiny": {"official": True, "source": "test", "files": files}}
    monkeypatch.setattr(verify, "releases", lambda: known)
    (made / "checklist.chk").unlink()
    code, r = run_verify(capsys, made)
    assert code == 0 and r["verdict"] == "genuine" and r["model"] == "Meta-Llama-3-Tiny"
    assert r["summary"] == "genuine Meta-Llama-3-Tiny: every file matches Meta's checklist"
    grader("checkpoint", "verify", made)
    assert "GENUINE: genuine Meta-Llama-3-Tiny" in capsys.readouterr().out


def test_a_release_known_by_sha256_is_named(capsys, made, monkeypatch):
    sha = hashlib.sha256((made / "consolidated.00.pth").read_bytes()).hexdigest()
    known = {"Llama3.2-Tiny": {"official": False, "source": "a mirror",
                               "files": {"consolidated.00.pth": {"sha256": sha}}}}
    monkeypatch.setattr(verify, "releases", lambda: known)
    code, r = run_verify(capsys, made)
    assert (r["verdict"] == "genuine" and r["model"] == "Llama3.2-Tiny"
            and "published checksums (a mirror)" in r["summary"])


def test_a_70b_download_is_checked_shard_by_shard(capsys, tmp_path):
    """Meta's 70B checklist: eight shards, each checked (tests/test_tensor_parallel.py checks real shards' shapes)."""
    folder = tmp_path / "Meta-Llama-3-70B"
    folder.mkdir()
    lines = []
    for i in range(8):
        (folder / f"consolidated.0{i}.pth").write_bytes(bytes([i]) * 1000)
        lines.append(f"{md5(folder / f'consolidated.0{i}.pth')}  consolidated.0{i}.pth")
    (folder / "params.json").write_text('{"dim": 8192}')
    lines.append(f"{md5(folder / 'params.json')}  params.json")
    (folder / "checklist.chk").write_text("\n".join(lines) + "\n")
    (folder / "consolidated.05.pth").write_bytes(b"\x00" * 999)
    code, r = run_verify(capsys, folder)
    assert code == 1
    assert [p.split(" has md5")[0] for p in r["problems"]][0] == "consolidated.05.pth"
    assert r["shapes"]["checked"] and "params.json lacks n_layers" in r["shapes"]["problems"][0]


def test_shapes_that_disagree_with_params_are_all_listed(capsys, made):
    edit_json(made / "params.json", n_kv_heads=1)
    (made / "checklist.chk").unlink()
    code, r = run_verify(capsys, made)
    assert code == 1 and r["verdict"] == "differs"
    assert len(r["shapes"]["problems"]) == 4  # wk and wv of both layers
    assert "layers.1.attention.wv.weight has shape [16, 32] but the config implies [8, 32]" in r["shapes"]["problems"]


def test_a_hugging_face_folder(capsys, tmp_path):
    out = tmp_path / "hf"
    assert grader("checkpoint", "convert", "--from", MODELS / "tiny-llama3.2", "--to-layout", "hf", "--out", out) == 0
    capsys.readouterr()
    code, r = run_verify(capsys, out)
    assert code == 0 and r["layout"] == "hf" and r["shapes"]["tensors"] == 21 and not r["shapes"]["problems"]
    assert {f["name"] for f in r["files"]} == {"model.safetensors", "config.json", "original/params.json",
                                               "original/tokenizer.model"}


def test_the_outcome_is_remembered_while_the_files_are_unchanged(capsys, made):
    assert verify.last_result(made) is None
    run_verify(capsys, made)
    last = verify.last_result(made)
    assert last["verdict"] == "matches checklist" and last["ok"] and last["folder"] == str(made.resolve())
    assert set(last) >= {"verdict", "ok", "model", "summary", "problems", "checked_at"}
    (made / "params.json").write_text((made / "params.json").read_text() + " ")
    assert verify.last_result(made) is None  # changed since: the old verdict no longer holds
    run_verify(capsys, made)
    assert verify.last_result(made)["verdict"] == "differs"


def test_a_corrupt_cache_file_is_no_memory(capsys, made, clean_env):
    (clean_env / "cache").mkdir(exist_ok=True)
    (clean_env / "cache" / "verify.json").write_text("{not json")
    assert verify.last_result(made) is None
    run_verify(capsys, made)
    assert verify.last_result(made)["verdict"] == "matches checklist"


def test_a_malformed_checklist(capsys, made):
    (made / "checklist.chk").write_text("not a checksum line\n")
    code = grader("checkpoint", "verify", made)
    assert code == 2 and "is not 'md5  file name'" in capsys.readouterr().err


def test_plain_output_reads_well(capsys, made):
    assert grader("checkpoint", "verify", made) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(str(made.resolve())) and "Meta layout, 3 files" in out[0]
    assert out[1].split()[:2] == ["ok", "consolidated.00.pth"] and out[1].endswith("= checklist.chk")
    assert out[-3].split()[:2] == ["ok", "shapes:"] and out[-2].split()[:2] == ["ok", "values:"]
    assert out[-1].startswith("OK: every file matches checklist.chk")


def test_a_converted_folder_carries_its_own_checklist(capsys, tmp_path):
    out = tmp_path / "converted"
    assert grader("checkpoint", "convert", "--from", MODELS / "tiny-llama3", "--to-layout", "meta", "--out", out) == 0
    assert (out / "checklist.chk").is_file()
    capsys.readouterr()
    code, r = run_verify(capsys, out)
    assert code == 0 and r["verdict"] == "matches checklist" and r["ok"] and r["problems"] == []


def test_meta_s_params_with_other_weights_and_a_checklist_is_a_note_not_a_problem(capsys, tmp_path):
    folder = tmp_path / "finetune"
    folder.mkdir()
    (folder / "params.json").write_text(LLAMA3_8B_PARAMS)
    shutil.copy(TOKENIZER, folder / "tokenizer.model")
    shutil.copy(MODELS / "tiny-llama3" / "consolidated.00.pth", folder)
    presets.write_checklist(folder)
    code, r = run_verify(capsys, folder)
    assert r["verdict"] == "differs"  # the tiny tensors do not fit the 8B params
    assert all("Meta-Llama-3-8B's, but" not in p for p in r["problems"])
    assert any("Meta-Llama-3-8B's, but consolidated.00.pth" in n and "converted or fine-tuned" in n for n in r["notes"])
