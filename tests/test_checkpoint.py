"""Checkpoint folders: Meta's layout and Hugging Face's (single file, sharded with an index, tokenizer in original/),
conversion both ways through `llama3-grader checkpoint convert`, identical logits from both layouts, the RoPE scale
factor of Meta-layout Llama 3.1/3.2, multi-shard 70B folders, and the random presets."""

import json
import shutil

import pytest
import torch
from safetensors import safe_open

from ckpt_kit import PROMPT42, TOKENIZER, copy_tiny, edit_json, grader
from grader.formats import checkpoint, hf_layout, presets, writers
from grader.errors import KitError
from grader.paths import MODELS, TINY_MODELS
from solutions.ex11_forward import forward

pytestmark = pytest.mark.usefixtures("clean_env")


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module", params=TINY_MODELS)
def converted(request, tmp_path_factory):
    """(name, the tiny Meta folder, its conversion to Hugging Face's layout by the CLI)."""
    name = request.param
    out = tmp_path_factory.mktemp("hf") / name
    assert grader("checkpoint", "convert", "--from", MODELS / name, "--to-layout", "hf", "--out", out) == 0
    return name, MODELS / name, out


def test_the_hugging_face_folder_is_laid_out_as_on_the_hub(converted):
    name, meta, hf = converted
    assert {p.name for p in hf.iterdir()} == {"config.json", "model.safetensors", "original"}
    assert (hf / "original" / "tokenizer.model").read_bytes() == TOKENIZER.read_bytes()
    config = json.loads((hf / "config.json").read_text())
    tied = name == "tiny-llama3.2"
    assert config["tie_word_embeddings"] is tied
    with safe_open(hf / "model.safetensors", "pt") as f:
        keys = set(f.keys())
        assert f.metadata() == {"format": "pt"}
    assert ("lm_head.weight" in keys) is not tied  # Hugging Face's 3.2 files have no lm_head
    assert "model.layers.0.self_attn.q_proj.weight" in keys and not any(k.startswith("layers.") for k in keys)
    if tied:
        assert config["rope_scaling"] == {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                          "original_max_position_embeddings": 8192, "rope_type": "llama3"}
    else:
        assert config["rope_scaling"] is None


def test_both_layouts_load_to_the_same_weights_and_args(converted):
    name, meta, hf = converted
    a, b = checkpoint.load(meta), checkpoint.load(hf)
    assert (a.layout, b.layout) == ("meta", "hf")
    assert a.args == b.args
    assert same_weights(a.weights, b.weights)
    assert a.tied == b.tied == (name == "tiny-llama3.2")
    assert b.tokenizer_path == hf / "original" / "tokenizer.model"


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_both_layouts_give_identical_logits(converted, dtype):
    name, meta, hf = converted
    logits = [forward(torch.tensor(PROMPT42), checkpoint.load(folder, dtype).weights, checkpoint.load(folder).args)
              for folder in (meta, hf)]
    assert torch.equal(logits[0], logits[1])


def test_q_and_k_rows_are_permuted_as_hugging_face_does(converted):
    """docs/facts.md §5.2: W_hf[h*d + j*(d/2) + i] = W_meta[h*d + 2i + j]; V is not permuted."""
    name, meta, hf = converted
    ck = checkpoint.load(meta)
    d = ck.args.head_dim
    with safe_open(hf / "model.safetensors", "pt") as f:
        q_hf = f.get_tensor("model.layers.1.self_attn.q_proj.weight")
        k_hf = f.get_tensor("model.layers.1.self_attn.k_proj.weight")
        v_hf = f.get_tensor("model.layers.1.self_attn.v_proj.weight")
    q_meta, k_meta = ck.weights["layers.1.attention.wq.weight"], ck.weights["layers.1.attention.wk.weight"]
    for h in range(ck.args.n_kv_heads):
        for i in range(d // 2):
            for j in range(2):
                assert torch.equal(q_hf[h * d + j * (d // 2) + i], q_meta[h * d + 2 * i + j])
                assert torch.equal(k_hf[h * d + j * (d // 2) + i], k_meta[h * d + 2 * i + j])
    assert torch.equal(v_hf, ck.weights["layers.1.attention.wv.weight"])


def test_converting_back_to_meta_gives_the_same_bytes(converted, tmp_path):
    name, meta, hf = converted
    back = tmp_path / "back"
    assert grader("checkpoint", "convert", "--from", hf, "--to-layout", "meta", "--out", back) == 0
    assert (back / "params.json").read_bytes() == (meta / "params.json").read_bytes()  # original/params.json, kept
    assert (back / "consolidated.00.pth").read_bytes() == (meta / "consolidated.00.pth").read_bytes()
    assert (back / "tokenizer.model").is_file()


def test_transformers_reads_the_converted_folder(converted):
    transformers = pytest.importorskip("transformers")
    name, meta, hf = converted
    ck = checkpoint.load(meta, "float32")
    model = transformers.LlamaForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
    with torch.no_grad():
        expected = model(torch.tensor([PROMPT42])).logits[0]
    got = forward(torch.tensor(PROMPT42), ck.weights, ck.args)
    assert (got - expected).abs().max() <= 1e-4


def test_transformers_model_shares_the_weights():
    pytest.importorskip("transformers")
    ck = checkpoint.load(MODELS / "tiny-llama3.2")
    model = hf_layout.transformers_model(ck.weights, ck.args)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.model.embed_tokens.weight.data_ptr() == ck.weights["tok_embeddings.weight"].data_ptr()
    assert (model.model.layers[0].mlp.down_proj.weight.data_ptr()
            == ck.weights["layers.0.feed_forward.w2.weight"].data_ptr())
    with torch.no_grad():
        hf_logits = model(torch.tensor([PROMPT42])).logits[0, -1]
    assert int(hf_logits.argmax()) == int(forward(torch.tensor(PROMPT42), ck.weights, ck.args)[-1].argmax())


def test_sharded_safetensors_with_an_index(tmp_path):
    ck = checkpoint.load(MODELS / "tiny-llama3")
    hf = tmp_path / "sharded"
    writers.save_hf(hf, hf_layout.to_hf(ck.weights, ck.args, False), hf_layout.config(ck.args, False, ck.dtype),
                    hf_layout.params_json(ck.args), TOKENIZER, shard_bytes=3_000_000)
    shards = sorted(p.name for p in hf.glob("model-*.safetensors"))
    assert len(shards) >= 3 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    index = json.loads((hf / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert index["metadata"]["total_size"] == ck.nbytes
    assert same_weights(checkpoint.load(hf).weights, ck.weights)
    # without the index, the model-*-of-* files are found by name
    (hf / "model.safetensors.index.json").unlink()
    assert same_weights(checkpoint.load(hf).weights, ck.weights)


def test_a_tokenizer_is_found_beside_the_weights_in_original_or_shipped(tmp_path):
    folder = copy_tiny("tiny-llama3", tmp_path / "m")
    assert checkpoint.load(folder).tokenizer_path == TOKENIZER
    (folder / "original").mkdir()
    shutil.copy(TOKENIZER, folder / "original" / "tokenizer.model")
    assert checkpoint.load(folder).tokenizer_path == folder / "original" / "tokenizer.model"
    shutil.copy(TOKENIZER, folder / "tokenizer.model")
    assert checkpoint.load(folder).tokenizer_path == folder / "tokenizer.model"


def test_tie_word_embeddings_true_means_the_embedding_is_the_output(converted, tmp_path):
    name, meta, hf = converted
    if name != "tiny-llama3":
        pytest.skip("needs the untied checkpoint")
    folder = tmp_path / "tied"
    shutil.copytree(hf, folder)
    edit_json(folder / "config.json", tie_word_embeddings=True)
    ck = checkpoint.load(folder)
    assert ck.weights["output.weight"] is ck.weights["tok_embeddings.weight"]


def test_transformers_5_rope_parameters_are_read(converted, tmp_path):
    name, meta, hf = converted
    folder = tmp_path / "v5"
    shutil.copytree(hf, folder)
    config = json.loads((folder / "config.json").read_text())
    theta, scaling = config.pop("rope_theta"), config.pop("rope_scaling")
    config["rope_parameters"] = ({"rope_type": "default", "rope_theta": theta} if scaling is None
                                 else {**scaling, "rope_theta": theta})
    (folder / "config.json").write_text(json.dumps(config))
    assert checkpoint.load(folder).args == checkpoint.load(meta).args


def _params_only(tmp_path, **params):
    folder = tmp_path / "params-only"
    folder.mkdir(exist_ok=True)
    (folder / "params.json").write_text(json.dumps(params))
    return folder


LLAMA32_1B = {"dim": 2048, "n_layers": 16, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
              "ffn_dim_multiplier": 1.5, "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0,
              "use_scaled_rope": True}


def test_meta_layout_llama32_uses_factor_32_and_31_uses_8(tmp_path):
    """docs/facts.md §2.4: Meta's params.json has no factor; 3.2 1B/3B need 32 (Meta's code says 8, a known bug)."""
    assert checkpoint.read_args(_params_only(tmp_path, **LLAMA32_1B), "meta").rope_scale_factor == 32.0
    llama32_3b = {**LLAMA32_1B, "dim": 3072, "n_layers": 28, "n_heads": 24, "ffn_dim_multiplier": 1.0}
    assert checkpoint.read_args(_params_only(tmp_path, **llama32_3b), "meta").rope_scale_factor == 32.0
    llama31_8b = {**LLAMA32_1B, "dim": 4096, "n_layers": 32, "multiple_of": 1024, "ffn_dim_multiplier": 1.3}
    args = checkpoint.read_args(_params_only(tmp_path, **llama31_8b), "meta")
    assert (args.rope_scale_factor, args.hidden_dim, args.max_seq_len) == (8.0, 14336, 131072)
    llama3_8b = {k: v for k, v in llama31_8b.items() if k != "use_scaled_rope"}
    args = checkpoint.read_args(_params_only(tmp_path, **llama3_8b), "meta")
    assert (args.rope_scale_factor, args.max_seq_len) == (None, 8192)


def test_the_rope_factor_can_be_overridden(tmp_path, monkeypatch):
    folder = _params_only(tmp_path, **LLAMA32_1B)
    assert checkpoint.read_args(folder, "meta", rope_scale_factor=8).rope_scale_factor == 8.0
    monkeypatch.setenv("LLAMA3_ROPE_SCALE_FACTOR", "16")
    assert checkpoint.read_args(folder, "meta").rope_scale_factor == 16.0
    assert checkpoint.read_args(folder, "meta", rope_scale_factor="4").rope_scale_factor == 4.0  # the argument wins
    # the whole load honours it, and the Hugging Face layout too
    monkeypatch.setenv("LLAMA3_ROPE_SCALE_FACTOR", "8")
    assert checkpoint.load(MODELS / "tiny-llama3.2").args.rope_scale_factor == 8.0
    monkeypatch.setenv("LLAMA3_ROPE_SCALE_FACTOR", "zero")
    with pytest.raises(KitError, match="not a positive number"):
        checkpoint.read_args(folder, "meta")
    monkeypatch.delenv("LLAMA3_ROPE_SCALE_FACTOR")
    with pytest.raises(KitError, match="does not use scaled RoPE"):
        checkpoint.load(MODELS / "tiny-llama3", rope_scale_factor=8)


def test_an_overridden_factor_survives_conversion(tmp_path):
    out = tmp_path / "hf"
    assert grader("checkpoint", "convert", "--from", MODELS / "tiny-llama3.2", "--to-layout", "hf", "--out", out,
                  "--rope-scale-factor", "8") == 0
    assert json.loads((out / "config.json").read_text())["rope_scaling"]["factor"] == 8.0
    assert checkpoint.load(out).args.rope_scale_factor == 8.0


def test_two_copies_of_one_file_are_not_two_shards(tmp_path):
    """Shards load (tests/test_tensor_parallel.py); a whole model copied as a second shard says what is wrong."""
    folder = copy_tiny("tiny-llama3", tmp_path / "m")
    shutil.copy(folder / "consolidated.00.pth", folder / "consolidated.01.pth")
    with pytest.raises(KitError) as e:
        checkpoint.load(folder)
    message = str(e.value)
    assert "consolidated.00.pth holds the whole model: consolidated.01.pth is a copy" in message
    assert "checkpoint verify" in message and "\n" not in message


def test_weights_are_memory_mapped_in_the_files_dtype():
    ck = checkpoint.load(MODELS / "tiny-llama3.2")
    assert all(w.dtype == torch.bfloat16 for w in ck.weights.values())
    assert ck.weights["output.weight"] is ck.weights["tok_embeddings.weight"]
    # a float32 cast is made only when asked for, and keeps the tie
    f32 = checkpoint.cast(ck.weights, "float32")
    assert f32["output.weight"] is f32["tok_embeddings.weight"] and f32["norm.weight"].dtype == torch.float32
    assert checkpoint.cast(ck.weights, torch.bfloat16)["norm.weight"] is ck.weights["norm.weight"]  # no copy


@pytest.mark.parametrize("name", TINY_MODELS)
def test_presets_redraw_the_committed_tiny_checkpoints_byte_for_byte(name, tmp_path):
    presets.make(name, tmp_path / name)
    for file in ("consolidated.00.pth", "params.json"):
        assert (tmp_path / name / file).read_bytes() == (MODELS / name / file).read_bytes()


def test_checkpoint_make_writes_a_meta_folder_with_tokenizer_and_checklist(tmp_path, capsys):
    out = tmp_path / "made"
    assert grader("checkpoint", "make", "--preset", "tiny-llama3", "--out", out) == 0
    assert {p.name for p in out.iterdir()} == {"params.json", "consolidated.00.pth", "tokenizer.model", "checklist.chk"}
    assert same_weights(checkpoint.load(out).weights, checkpoint.load(MODELS / "tiny-llama3").weights)
    assert f"LLAMA3_CHECKPOINT={out}" in capsys.readouterr().out
    hf = tmp_path / "made-hf"
    assert grader("checkpoint", "make", "--preset", "tiny-llama3.2", "--out", hf, "--layout", "hf") == 0
    assert checkpoint.load(hf).layout == "hf"


def test_real_presets_have_the_real_shapes_and_sizes():
    """docs/facts.md §8: parameter counts and bf16 bytes."""
    from solutions.ex02_checkpoint import model_args

    expected = {"llama3.2-1b": 1_235_814_400, "llama3.2-3b": 3_212_749_824, "llama3-8b": 8_030_261_248}
    for preset, n_params in expected.items():
        shapes = checkpoint.expected_shapes(model_args(presets.PRESETS[preset]))
        total = sum(torch.Size(s).numel() for k, s in shapes.items()
                    if not (k == "output.weight" and preset in presets.TIED))
        assert total == n_params, preset
    assert model_args(presets.PRESETS["llama3-8b"]).hidden_dim == 14336
    assert model_args(presets.PRESETS["llama3.2-1b"]).rope_scale_factor == 32.0


def test_generate_bench_and_verify_run_on_both_layouts(converted, capsys):
    name, meta, hf = converted
    generated = []
    for folder in (meta, hf):
        assert grader("generate", "--impl", "solutions", "--checkpoint", folder, "--max-new-tokens", "4", "--json") == 0
        out = json.loads(capsys.readouterr().out)
        assert out["prompt_ids"] == PROMPT42
        generated.append(out["generated_ids"])
        assert grader("bench", "--impl", "solutions", "--checkpoint", folder, "--new-tokens", "2", "--repeats", "1",
                      "--no-transformers", "--json") == 0
        assert json.loads(capsys.readouterr().out)["layout"] == ("meta" if folder == meta else "hf")
        assert grader("checkpoint", "verify", folder, "--json") == 0
        assert json.loads(capsys.readouterr().out)["shapes"]["problems"] == []
    assert generated[0] == generated[1]
