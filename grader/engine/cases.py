"""What each exercise is fed: the golden calls the builder runs with solutions/ and the graded tests replay.

Inputs come from running the reference on the prompts below, so every exercise gets realistic activations
(layer 0's input is the prompt's embeddings, and so on) without depending on the learner's earlier work."""

import torch

from solutions import ex01_tokenizer as tok
from solutions import ex03_embeddings, ex04_rms_norm, ex05_qkv, ex06_rope, ex07_attention, ex08_multi_head_attention, ex10_transformer_block, ex12_generation

from .calls import Call, Ref

PROMPTS = {
    "prompt42": "the answer to the ultimate question of life, the universe, and everything is ",
    "mixed": 'Llama 3 说："你好，世界！" Then in Python: def answer(): return 6 * 7  # 生命、宇宙以及一切的答案',
}
# Published token ids of the 42 prompt (FACTS section 0).
PROMPT42_IDS = [128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220]
# params.json of released models (FACTS section 1.1), for the exercise 2 calls that need no checkpoint.
RELEASED = {
    "llama3-8b": {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256, "multiple_of": 1024,
                  "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0},
    "llama3-70b": {"dim": 8192, "n_layers": 80, "n_heads": 64, "n_kv_heads": 8, "vocab_size": 128256, "multiple_of": 4096,
                   "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0},
    "llama3.1-8b": {"dim": 4096, "ffn_dim_multiplier": 1.3, "multiple_of": 1024, "n_heads": 32, "n_kv_heads": 8, "n_layers": 32,
                    "norm_eps": 1e-05, "rope_theta": 500000.0, "use_scaled_rope": True, "vocab_size": 128256},
    "llama3.1-405b": {"dim": 16384, "n_layers": 126, "n_heads": 128, "n_kv_heads": 8, "vocab_size": 128256, "multiple_of": 4096,
                      "ffn_dim_multiplier": 1.2, "norm_eps": 1e-05, "rope_theta": 500000.0, "use_scaled_rope": True},
    "llama3.2-1b": {"dim": 2048, "n_layers": 16, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256, "ffn_dim_multiplier": 1.5,
                    "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0, "use_scaled_rope": True},
    "llama3.2-3b": {"dim": 3072, "n_layers": 28, "n_heads": 24, "n_kv_heads": 8, "vocab_size": 128256, "ffn_dim_multiplier": 1.0,
                    "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0, "use_scaled_rope": True},
}
SPECIAL_TEXT = "<|begin_of_text|>user said <|eot_id|> in plain text"


# Drivers: graded calls of classes and loaders, run the same way on the reference and on the learner's code.

def drive_tokenizer(load_tokenizer, path, texts):
    """Load a tokenizer and encode texts with special tokens allowed."""
    t = load_tokenizer(path)
    return {"n_vocab": t.n_vocab, "ids": [t.encode(s, allowed_special="all") for s in texts]}


def drive_load_weights(load_weights, folder, names):
    """Load the weights; report their names and the first two rows of a few tensors."""
    w = load_weights(folder)
    return {"names": sorted(w), **{name: w[name][:2] for name in names}}


def drive_kv_cache(KVCache, n_layers, max_seq_len, n_kv_heads, head_dim, dtype, k_prefill, v_prefill, k_step, v_step):
    """Prefill layer n_layers - 1 with a prompt's keys and values, then add one step; return what update gave."""
    cache = KVCache(n_layers, max_seq_len, n_kv_heads, head_dim, getattr(torch, dtype))
    layer = n_layers - 1
    k0, v0 = cache.update(layer, 0, k_prefill, v_prefill)
    k1, v1 = cache.update(layer, k_prefill.shape[0], k_step, v_step)
    return {"keys_after_prefill": k0.clone(), "values_after_prefill": v0.clone(), "keys_after_step": k1, "values_after_step": v1}


DRIVERS = {f.__name__: f for f in (drive_tokenizer, drive_load_weights, drive_kv_cache)}


class Activations:
    """The reference's intermediate tensors on one prompt, computed once."""

    def __init__(self, model, prompt: str):
        ck = model.checkpoint
        self.args, w = ck.args, model.weights()
        self.ids = tok.encode(model.tokenizer, prompt)
        self.tokens = torch.tensor(self.ids)  # [seq]
        seq = len(self.ids)
        self.x = ex03_embeddings.embed(self.tokens, w["tok_embeddings.weight"])  # [seq, dim]
        self.x_normed = ex04_rms_norm.rms_norm(self.x, w["layers.0.attention_norm.weight"], self.args.norm_eps)
        self.q, self.k, self.v = ex05_qkv.project_qkv(
            self.x_normed, w["layers.0.attention.wq.weight"], w["layers.0.attention.wk.weight"], w["layers.0.attention.wv.weight"],
            self.args.n_heads, self.args.n_kv_heads)
        self.freqs_cis = ex06_rope.precompute_freqs_cis(self.args.head_dim, seq, self.args.rope_theta, self.args.rope_scale_factor)
        self.q_rot, self.k_rot = ex06_rope.apply_rope(self.q, self.freqs_cis), ex06_rope.apply_rope(self.k, self.freqs_cis)
        self.mask = ex07_attention.causal_mask(seq)
        self.h = self.x + ex08_multi_head_attention.self_attention(self.x_normed, w, 0, self.args, self.freqs_cis, self.mask)
        self.h_normed = ex04_rms_norm.rms_norm(self.h, w["layers.0.ffn_norm.weight"], self.args.norm_eps)
        self.last_input = self.x  # input of the last layer
        for layer_id in range(self.args.n_layers - 1):
            self.last_input = ex10_transformer_block.transformer_block(self.last_input, w, layer_id, self.args, self.freqs_cis, self.mask)


def calls(model) -> dict[str, list[Call]]:
    """Every golden call, by exercise module, for one model.

    Functions with attention in them are graded in float32 on the tiny models, where ordering the arithmetic
    differently stays within float32 noise, plus one bf16 case for the model's own dtype; bf16 attention is
    too sensitive to rounding for a tight tolerance (see compare.TOLERANCES). Real checkpoints stay bf16."""
    args = model.checkpoint.args
    acts = {name: Activations(model, text) for name, text in PROMPTS.items()}
    a42 = acts["prompt42"]
    W = lambda name: Ref("weight", name)  # noqa: E731
    exact = "float32" if model.is_tiny else ""  # weights dtype for the attention-bearing cases
    f32 = (lambda t: t.float()) if model.is_tiny else (lambda t: t)  # noqa: E731
    attn_tol, layers_tol = ("float32", "float32 layers") if model.is_tiny else ("bf16 attention", "bf16 attention")
    n_new = 16 if model.is_tiny else 8
    out: dict[str, list[Call]] = {}

    m = "ex01_tokenizer"
    out[m] = [Call(m, "special_tokens", "table", {}),
              Call(m, "load_tokenizer", "prompts", {"path": Ref("tokenizer_path"), "texts": [*PROMPTS.values(), SPECIAL_TEXT]},
                   driver="drive_tokenizer")]
    out[m] += [Call(m, "encode", name, {"tokenizer": Ref("tokenizer"), "text": text}) for name, text in PROMPTS.items()]
    out[m] += [Call(m, "encode", "with_eos", {"tokenizer": Ref("tokenizer"), "text": PROMPTS["prompt42"], "bos": True, "eos": True}),
               Call(m, "encode", "special_text", {"tokenizer": Ref("tokenizer"), "text": SPECIAL_TEXT})]
    out[m] += [Call(m, "decode", name, {"tokenizer": Ref("tokenizer"), "ids": a.ids}) for name, a in acts.items()]

    m = "ex02_checkpoint"
    out[m] = [Call(m, "ffn_hidden_dim", name, {k: p.get(k) for k in ("dim", "multiple_of", "ffn_dim_multiplier")})
              for name, p in RELEASED.items()]
    out[m] += [Call(m, "rope_scale_factor", name, {"params": p}) for name, p in RELEASED.items()]
    out[m] += [Call(m, "model_args", name, {"params": p}) for name, p in RELEASED.items()]
    if model.checkpoint.layout == "meta":
        out[m] += [Call(m, "load_params", "folder", {"folder": Ref("folder")}),
                   Call(m, "load_weights", "folder", {"folder": Ref("folder"), "names": ["tok_embeddings.weight", "layers.0.attention.wq.weight", "norm.weight"]},
                        driver="drive_load_weights")]

    m = "ex03_embeddings"
    out[m] = [Call(m, "embed", name, {"tokens": a.tokens, "tok_embeddings": W("tok_embeddings.weight")}) for name, a in acts.items()]

    m = "ex04_rms_norm"
    norm = {"weight": W("layers.0.attention_norm.weight"), "eps": args.norm_eps}
    out[m] = [Call(m, "rms_norm", name, {"x": a.x, **norm}) for name, a in acts.items()]
    out[m] += [Call(m, "rms_norm", "small_inputs", {"x": a42.x * 1e-3, **norm}),
               Call(m, "rms_norm", "float32", {"x": a42.x.float(), "weight": model.weights()["layers.0.attention_norm.weight"].float(),
                                               "eps": args.norm_eps}, tolerance="float32")]

    m = "ex05_qkv"
    out[m] = [Call(m, "linear", "prompt42", {"x": a42.x_normed, "weight": W("layers.0.attention.wq.weight")})]
    out[m] += [Call(m, "project_qkv", name, {"x": a.x_normed, "wq": W("layers.0.attention.wq.weight"), "wk": W("layers.0.attention.wk.weight"),
                                            "wv": W("layers.0.attention.wv.weight"), "n_heads": args.n_heads, "n_kv_heads": args.n_kv_heads},
                    outputs=("q", "k", "v")) for name, a in acts.items()]

    m = "ex06_rope"
    base = {hd: ex06_rope.precompute_freqs_cis(hd, 2, 500000.0)[1].angle() for hd in (64, 128)}  # f_i = angle at position 1
    out[m] = [Call(m, "apply_scaling", f"head_dim{hd}_factor{int(f)}", {"freqs": base[hd], "scale_factor": f}, tolerance="float32")
              for hd in (64, 128) for f in (8.0, 32.0)]
    out[m] += [Call(m, "precompute_freqs_cis", "llama3-8b", {"head_dim": 128, "end": 64, "theta": 500000.0, "scale_factor": None}, tolerance="float32"),
               Call(m, "precompute_freqs_cis", "llama3.2-1b", {"head_dim": 64, "end": 64, "theta": 500000.0, "scale_factor": 32.0}, tolerance="float32")]
    out[m] += [Call(m, "precompute_freqs_cis", name, {"head_dim": args.head_dim, "end": len(a.ids), "theta": args.rope_theta,
                                                     "scale_factor": args.rope_scale_factor}, tolerance="float32") for name, a in acts.items()]
    out[m] += [Call(m, "apply_rope", f"{name}_{which}", {"x": x, "freqs_cis": a.freqs_cis})
               for name, a in acts.items() for which, x in (("q", a.q), ("k", a.k))]

    m = "ex07_attention"
    out[m] = [Call(m, "causal_mask", f"seq{s}_start{p}", {"seqlen": s, "start_pos": p}) for s, p in ((17, 0), (4, 13), (1, 16))]
    head = lambda a, h, cast: {"q": cast(a.q_rot[:, h]), "k": cast(a.k_rot[:, h // args.n_rep]), "v": cast(a.v[:, h // args.n_rep]), "mask": a.mask}  # noqa: E731
    out[m] += [Call(m, "attention", f"{name}_head{h}", head(a, h, f32), tolerance=attn_tol) for name, a in acts.items() for h in (0, args.n_heads - 1)]
    out[m] += [Call(m, "attention", "prompt42_head0_bf16", head(a42, 0, lambda t: t), tolerance="bf16 attention")] if model.is_tiny else []

    m = "ex08_multi_head_attention"
    out[m] = [Call(m, "repeat_kv", name, {"x": a.k_rot, "n_rep": args.n_rep}) for name, a in acts.items()]
    gqa = lambda a, cast: {"q": cast(a.q_rot), "k": cast(a.k_rot), "v": cast(a.v), "mask": a.mask}  # noqa: E731
    out[m] += [Call(m, "grouped_query_attention", name, gqa(a, f32), tolerance=attn_tol) for name, a in acts.items()]
    attn = lambda a, cast, dtype: {"x": cast(a.x_normed), "weights": Ref("weights", dtype), "layer_id": 0, "args": Ref("args"),  # noqa: E731
                                   "freqs_cis": a.freqs_cis, "mask": a.mask}
    out[m] += [Call(m, "self_attention", name, attn(a, f32, exact), tolerance=layers_tol) for name, a in acts.items()]
    if model.is_tiny:
        out[m] += [Call(m, "grouped_query_attention", "prompt42_bf16", gqa(a42, lambda t: t), tolerance="bf16 attention"),
                   Call(m, "self_attention", "prompt42_bf16", attn(a42, lambda t: t, ""), tolerance="bf16 attention")]

    m = "ex09_feed_forward"
    ffn = {f"w{i}": W(f"layers.0.feed_forward.w{i}.weight") for i in (1, 2, 3)}
    out[m] = [Call(m, "feed_forward", name, {"x": a.h_normed, **ffn}, tolerance="bf16 layer") for name, a in acts.items()]

    m = "ex10_transformer_block"
    block = lambda a, layer_id, x, dtype: {"x": x, "weights": Ref("weights", dtype), "layer_id": layer_id, "args": Ref("args"),  # noqa: E731
                                           "freqs_cis": a.freqs_cis, "mask": a.mask}
    out[m] = [Call(m, "transformer_block", f"{name}_layer0", block(a, 0, f32(a.x), exact), tolerance=layers_tol) for name, a in acts.items()]
    last = args.n_layers - 1
    out[m] += [Call(m, "transformer_block", f"prompt42_layer{last}", block(a42, last, f32(a42.last_input), exact), tolerance=layers_tol)]
    if model.is_tiny:
        out[m] += [Call(m, "transformer_block", "prompt42_layer0_bf16", block(a42, 0, a42.x, ""), tolerance="bf16 attention")]

    m = "ex11_forward"
    fwd = lambda a, dtype: {"tokens": a.tokens, "weights": Ref("weights", dtype), "args": Ref("args")}  # noqa: E731
    out[m] = [Call(m, "forward", name, fwd(a, exact), tolerance=layers_tol, reduce="logits") for name, a in acts.items()]
    if model.is_tiny:
        out[m] += [Call(m, "forward", "prompt42_bf16", fwd(a42, ""), tolerance="bf16 attention", reduce="logits")]
    out[m] += [Call(m, "next_token", "logits", {"logits": torch.linspace(-3, 3, 4 * 1000).reshape(4, 1000).roll(1234 * 7 % 1000, dims=1)})]
    gen = lambda ids, n, stops: {"prompt_ids": ids, "weights": Ref("weights", exact), "args": Ref("args"),  # noqa: E731
                                 "max_new_tokens": n, "stop_tokens": stops}
    out[m] += [Call(m, "generate_uncached", name, gen(a.ids, n_new // 2, list(tok.STOP_TOKENS)), tolerance=layers_tol, reduce="generation")
               for name, a in acts.items()]

    m = "ex12_generation"
    out[m] = [Call(m, "KVCache", name, {"n_layers": args.n_layers, "max_seq_len": len(a.ids) + 4, "n_kv_heads": args.n_kv_heads,
                                        "head_dim": args.head_dim, "dtype": str(a.k_rot.dtype).removeprefix("torch."),
                                        "k_prefill": a.k_rot, "v_prefill": a.v, "k_step": a.k_rot[-1:] * 0.5, "v_step": a.v[-1:] * 0.5},
                   driver="drive_kv_cache") for name, a in acts.items()]
    out[m] += [Call(m, "generate", name, gen(a.ids, n_new, list(tok.STOP_TOKENS)), tolerance=layers_tol, reduce="generation")
               for name, a in acts.items()]
    first = [t for t, _ in ex12_generation.generate(a42.ids, model.weights(exact), args, 4)]
    out[m] += [Call(m, "generate", "stop_token", gen(a42.ids, n_new, [first[3]]), tolerance=layers_tol, reduce="generation")]
    return out
