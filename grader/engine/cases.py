"""What each exercise is fed: the golden calls the builder runs with solutions/ and the graded tests replay.

Inputs come from running the reference on the prompts below, so every exercise gets realistic activations
(layer 0's input is the prompt's embeddings, and so on) without depending on the learner's earlier work."""

import itertools

import torch

from solutions import ex01_tokenizer as tok
from solutions import ex03_embeddings, ex04_rms_norm, ex05_qkv, ex06_rope, ex07_attention, ex08_multi_head_attention, ex10_transformer_block, ex12_generation

from . import impl as impls
from .calls import Call, GradeFailure, Ref, generation, logits_head
from .compare import value_mismatch
from ..i18n import pick

PROMPTS = {
    "prompt42": "the answer to the ultimate question of life, the universe, and everything is ",
    "mixed": 'Llama 3 说："你好，世界！" Then in Python: def answer(): return 6 * 7  # 生命、宇宙以及一切的答案',
}
# Texts the tokenizer is graded on besides the prompts: each is a rule of Llama 3's split pattern.
TOKENIZER_TEXTS = {
    "numbers": "In 1969, 12345 people paid $3,141.59 for 2048 tickets; 1000000 more by 20240101.",
    "whitespace": "a  b   c\t\td\n\n\ne \r\n f    \n  end  ",
    "contractions": "I'LL say it's THEY'RE we've You'D she'S they'll I'm",
    "punctuation": "Wait...!!! (yes?) --- [ok] {x: 1}; a->b => c::d ;;\n!!",
    "unicode": "🦙 Llama 3 🚀 👍🏽 é ñ ü 日本語 한국어 Ελληνικά",
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
# params where a rule of exercise 2 matters that the released files never exercise.
CONTRACT = {
    # 2666 rounds up to 2816; to the nearest multiple of 256 it would be 2560
    "rounds_up": {"dim": 1000, "n_layers": 2, "n_heads": 8, "n_kv_heads": 4, "vocab_size": 128256, "multiple_of": 256,
                  "norm_eps": 1e-05, "rope_theta": 500000.0},
    # Llama 2's files: no n_kv_heads, so every head has its own K/V (n_kv_heads = n_heads)
    "no_n_kv_heads": {"dim": 4096, "n_layers": 32, "n_heads": 32, "vocab_size": 32000, "multiple_of": 256, "norm_eps": 1e-05,
                      "rope_theta": 10000.0},
    "null_n_kv_heads": {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": None, "vocab_size": 128256, "multiple_of": 256,
                        "norm_eps": 1e-05, "rope_theta": 500000.0},
    # an explicit factor written as an integer: the contract is a float
    "int_factor": {"dim": 2048, "n_layers": 16, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256, "ffn_dim_multiplier": 1.5,
                   "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0, "use_scaled_rope": True, "rope_scaling_factor": 32},
}
SPECIAL_TEXT = "<|begin_of_text|>user said <|eot_id|> in plain text"
GENERATION_PROMPT_TOKENS = 64  # longer prompts are graded through forward; generating from them adds time, not checks


# Drivers: graded calls of classes, loaders and the cached path, run the same way on the reference and on the
# learner's code.

def drive_tokenizer(load_tokenizer, path, texts):
    """Load a tokenizer and encode texts with special tokens allowed."""
    t = load_tokenizer(path)
    return {"n_vocab": t.n_vocab, "ids": [t.encode(s, allowed_special="all") for s in texts]}


def drive_load_weights(load_weights, folder, names):
    """Load the weights; report their names and the first two rows of a few tensors."""
    w = load_weights(folder)
    return {"names": sorted(w), **{name: w[name][:2] for name in names}}


def drive_kv_cache(KVCache, n_layers, max_seq_len, n_kv_heads, head_dim, dtype, k_prefill, v_prefill, k_steps, v_steps):
    """Prefill layer n_layers - 1 with a prompt's keys and values, add one step, then a chunk of the rest; return
    what update gave each time."""
    cache = KVCache(n_layers, max_seq_len, n_kv_heads, head_dim, getattr(torch, dtype))
    layer, start = n_layers - 1, k_prefill.shape[0]
    k0, v0 = cache.update(layer, 0, k_prefill, v_prefill)
    k0, v0 = k0.clone(), v0.clone()  # the cache may hand out views of its buffers
    k1, v1 = cache.update(layer, start, k_steps[:1], v_steps[:1])
    k1, v1 = k1.clone(), v1.clone()
    k2, v2 = cache.update(layer, start + 1, k_steps[1:], v_steps[1:])
    return {"keys_after_prefill": k0, "values_after_prefill": v0, "keys_after_step": k1, "values_after_step": v1,
            "keys_after_chunk": k2, "values_after_chunk": v2}


class CheckedCache(ex12_generation.KVCache):
    """The reference KV cache, checking how the code under test calls it: with the K/V heads it holds, at the
    positions the chunk occupies, once for every layer."""

    def __init__(self, args, max_seq_len: int, dtype: torch.dtype, who: str):
        super().__init__(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype)
        self.n_kv_heads, self.who = args.n_kv_heads, who
        self.start, self.written = 0, set()

    def expect(self, start: int) -> None:
        """The next chunk starts at position start."""
        self.start, self.written = start, set()

    def update(self, layer_id, start_pos, k, v):
        if not isinstance(k, torch.Tensor) or k.dim() != 3 or k.shape[1] != self.n_kv_heads:
            shape = list(k.shape) if isinstance(k, torch.Tensor) else type(k).__name__
            raise GradeFailure(pick(
                f"{self.who}: cache.update got keys {shape}, but the cache holds n_kv_heads = {self.n_kv_heads} heads "
                "[seq, n_kv_heads, head_dim]: update the cache before repeat_kv (it keeps only the K/V heads)",
                f"{self.who}：cache.update 收到的 key 是 {shape}，但缓存只保存 n_kv_heads = {self.n_kv_heads} 个头 "
                "[seq, n_kv_heads, head_dim]：要在 repeat_kv 之前更新缓存（它只存 K/V 头）"))
        if start_pos != self.start:
            raise GradeFailure(pick(
                f"{self.who}: cache.update(layer_id={layer_id}, start_pos={start_pos}) for tokens at positions "
                f"{self.start}..{self.start + k.shape[0] - 1}: pass start_pos on unchanged, it is where this chunk goes",
                f"{self.who}：位置 {self.start}..{self.start + k.shape[0] - 1} 的 token 调用了 "
                f"cache.update(layer_id={layer_id}, start_pos={start_pos})：start_pos 要原样传下去，它就是这一段的位置"))
        self.written.add(layer_id)
        return super().update(layer_id, start_pos, k, v)

    def check_written(self, layers, n: int) -> None:
        """Every layer in layers wrote this chunk of n tokens."""
        missing = [layer for layer in layers if layer not in self.written]
        if missing:
            where = f"{self.start}..{self.start + n - 1}"
            hint = dict.fromkeys(("self_attention", "parallel_attention"), pick("with a cache, write this chunk's rotated keys and values with "
                                           "cache.update(layer_id, start_pos, k, v) and attend over what it returns",
                                           "有缓存时，用 cache.update(layer_id, start_pos, k, v) 写入这一段旋转后的 key 和 value，"
                                           "并对它返回的全部 key/value 做注意力")).get(
                self.who, pick("pass cache and start_pos on to every layer's self_attention", "把 cache 和 start_pos 传给每一层的 self_attention"))
            raise GradeFailure(pick(f"{self.who}: layer {missing[0]}'s cache was not updated for positions {where}: {hint}",
                                    f"{self.who}：第 {missing[0]} 层的缓存没有写入位置 {where}：{hint}"))


def _chunks(chunks):
    """(name, start, end) of each chunk, from (name, length) pairs."""
    start = 0
    for name, n in chunks:
        yield name, start, start + n
        start += n


def drive_layer_cached(layer, x, weights, layer_id, args, freqs_cis, chunks, cache_args=None):
    """self_attention or transformer_block over x in chunks through one cache: a prefill, decode steps of one
    token, then a chunk of several after the cached ones; the outputs of each. cache_args, if given, are the
    ModelArgs the cache holds heads for (one rank's, in exercise 17)."""
    cache = CheckedCache(cache_args or args, x.shape[0], x.dtype, layer.__name__)
    out = {}
    for name, start, end in _chunks(chunks):
        n = end - start
        mask = ex07_attention.causal_mask(n, start) if n > 1 else None  # [n, start + n]
        cache.expect(start)
        out[name] = layer(x[start:end], weights, layer_id, args, freqs_cis[start:end], mask, cache, start)
        cache.check_written([layer_id], n)
    return out


def drive_forward_cached(forward, tokens, weights, args, chunks, cache_args=None):
    """forward over tokens in chunks through one cache; the first columns of each chunk's logits."""
    cache = CheckedCache(cache_args or args, tokens.shape[0], weights["tok_embeddings.weight"].dtype, forward.__name__)
    out = {}
    for name, start, end in _chunks(chunks):
        cache.expect(start)
        logits = forward(tokens[start:end], weights, args, cache, start)
        cache.check_written(range(args.n_layers), end - start)
        out[name] = logits_head(logits, f"{forward.__name__} ({name})")["head"]
    return out


def drive_generation(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens):
    """Run a generator to the end; what is compared of its (token, logits) pairs."""
    steps = list(generate(prompt_ids, weights, args, max_new_tokens, stop_tokens))
    return generation(steps, generate.__name__, stop_tokens)


def drive_generate(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens, forward="forward", n_kv_heads=None):
    """drive_generation, checking that every token goes through forward (by that name) once, through one cache made
    for n_kv_heads K/V heads (default args.n_kv_heads)."""
    with impls.spy(generate, forward) as calls, impls.spy(generate, "KVCache") as made:
        try:
            out = drive_generation(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens)
        finally:  # a cache of the wrong size also explains the error it causes
            check_cache_heads(made, n_kv_heads or args.n_kv_heads, generate.__name__)
    check_cache_use(calls)
    return out


def check_cache_heads(made: list[dict], n_kv_heads: int, who: str) -> None:
    """Every KVCache who made (its constructor's arguments) holds n_kv_heads K/V heads."""
    for c in made:
        if c.get("n_kv_heads") != n_kv_heads:
            raise GradeFailure(pick(
                f"{who} made its KVCache for {c.get('n_kv_heads')} K/V heads, but the keys and values written into it have "
                f"{n_kv_heads}: args.n_kv_heads in exercise 12 (the cache holds them before repeat_kv), this rank's "
                "local_args(args, world_size).n_kv_heads in exercise 17",
                f"{who} 创建的 KVCache 有 {c.get('n_kv_heads')} 个 K/V 头，但写入它的 key 和 value 有 {n_kv_heads} 个："
                "练习 12 中用 args.n_kv_heads（缓存存的是 repeat_kv 之前的值），练习 17 中用本 rank 的 "
                "local_args(args, world_size).n_kv_heads"))


def check_cache_use(calls: list[dict], who: str = "generate") -> None:
    """From generate's (or who's) calls of forward: one cache throughout, each call feeding only tokens not yet in it, at
    start_pos = the number already cached. (A generate that never calls forward is not judged here.)"""
    cached, cache = 0, None
    for i, c in enumerate(calls):
        n = len(c["tokens"]) if hasattr(c["tokens"], "__len__") else 1
        if c.get("cache") is None:
            raise GradeFailure(pick(f"{who} called forward without a cache (call {i + 1}): make one KVCache before the loop and pass it, with start_pos, to every forward",
                                    f"{who} 调用 forward 时没有传缓存（第 {i + 1} 次调用）：在循环之前创建一个 KVCache，每次调用 forward 都传入它和 start_pos"))
        if cache is not None and c["cache"] is not cache:
            raise GradeFailure(pick(f"{who} passed a new cache to forward at call {i + 1}: make one KVCache before the loop and keep it",
                                    f"{who} 在第 {i + 1} 次调用 forward 时换了一个新缓存：在循环之前创建一个 KVCache 并一直使用它"))
        start = c.get("start_pos")
        if start != cached:
            raise GradeFailure(pick(
                f"{who} fed forward {n} tokens at start_pos={start} (call {i + 1}), but {cached} tokens were in the cache: "
                "after the prefill, feed only the token just chosen, at start_pos = the number of tokens already cached",
                f"{who} 在第 {i + 1} 次调用 forward 时以 start_pos={start} 传入了 {n} 个 token，而缓存中已有 {cached} 个：预填充之后，"
                "只传入刚选出的那个 token，start_pos 等于缓存中已有的 token 数"))
        cached, cache = cached + n, c["cache"]


DRIVERS = {f.__name__: f for f in (drive_tokenizer, drive_load_weights, drive_kv_cache, drive_layer_cached, drive_forward_cached,
                                   drive_generation, drive_generate)}


class Activations:
    """The reference's intermediate tensors on one prompt, computed once."""

    def __init__(self, model, prompt: str):
        ck = model.checkpoint
        self.args, w = ck.args, model.weights()
        self.ids = ck.tokenizer.encode(prompt)
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
        # the cached path: a prefill, then two decode steps of one token, or a chunk of three after the cached ones
        self.cached = {"cached_decode": [["prefill", seq - 2], ["decode_step_1", 1], ["decode_step_2", 1]],
                       "cached_chunk": [["prefill", seq - 3], ["chunk", 3]]}


def calls(model, prompts: dict[str, str] | None = None) -> dict[str, list[Call]]:
    """Every golden call, by exercise module, for one model.

    Functions with attention in them are graded in float32, where ordering the arithmetic differently stays
    within float32 noise even on a trained model's outlier activations; a real checkpoint's bf16 weights are
    upcast as each is read. The tiny models add one bf16 case each for the model's own dtype: bf16 attention is
    too sensitive to rounding for a tight tolerance (see compare.TOLERANCES), and on trained weights beyond
    any useful one."""
    args = model.checkpoint.args
    prompts = prompts or PROMPTS
    acts = {name: Activations(model, text) for name, text in prompts.items()}
    a0 = next(iter(acts.values()))
    W = lambda name: Ref("weight", name)  # noqa: E731
    f32 = lambda t: t.float()  # noqa: E731
    n_new = 16 if model.is_tiny else 8
    stops = list(model.checkpoint.tokenizer.stop_ids)
    out: dict[str, list[Call]] = {}

    m = "ex01_tokenizer"  # Llama 3's tokenizer: graded on the checkpoints that use it
    out[m] = []
    if model.checkpoint.tokenizer.is_llama3:
        texts = {**prompts, **TOKENIZER_TEXTS}
        ids = {name: tok.encode(model.tokenizer, text) for name, text in texts.items()}
        out[m] = [Call(m, "special_tokens", "table", {}),
                  Call(m, "load_tokenizer", "prompts", {"path": Ref("tokenizer_path"), "texts": [*texts.values(), SPECIAL_TEXT]},
                       driver="drive_tokenizer")]
        out[m] += [Call(m, "encode", name, {"tokenizer": Ref("tokenizer"), "text": text}) for name, text in texts.items()]
        out[m] += [Call(m, "encode", "with_eos", {"tokenizer": Ref("tokenizer"), "text": PROMPTS["prompt42"], "bos": True, "eos": True}),
                   Call(m, "encode", "special_text", {"tokenizer": Ref("tokenizer"), "text": SPECIAL_TEXT})]
        out[m] += [Call(m, "decode", name, {"tokenizer": Ref("tokenizer"), "ids": i}) for name, i in ids.items()]

    m = "ex02_checkpoint"
    params = {**RELEASED, **CONTRACT}
    out[m] = [Call(m, "ffn_hidden_dim", name, {k: p.get(k) for k in ("dim", "multiple_of", "ffn_dim_multiplier")})
              for name, p in params.items()]
    out[m] += [Call(m, "rope_scale_factor", name, {"params": p}) for name, p in params.items()]
    out[m] += [Call(m, "model_args", name, {"params": p}) for name, p in params.items()]
    if model.checkpoint.layout == "meta":
        out[m] += [Call(m, "load_params", "folder", {"folder": Ref("folder")}),
                   Call(m, "load_weights", "folder", {"folder": Ref("folder"), "names": ["tok_embeddings.weight", "layers.0.attention.wq.weight", "norm.weight"]},
                        driver="drive_load_weights")]

    m = "ex03_embeddings"
    out[m] = [Call(m, "embed", name, {"tokens": a.tokens, "tok_embeddings": W("tok_embeddings.weight")}) for name, a in acts.items()]

    m = "ex04_rms_norm"
    norm = {"weight": W("layers.0.attention_norm.weight"), "eps": args.norm_eps}
    out[m] = [Call(m, "rms_norm", name, {"x": a.x, **norm}) for name, a in acts.items()]
    out[m] += [Call(m, "rms_norm", "small_inputs", {"x": a0.x * 1e-3, **norm}),
               Call(m, "rms_norm", "float32", {"x": a0.x.float(), "weight": model.weights()["layers.0.attention_norm.weight"].float(),
                                               "eps": args.norm_eps}, tolerance="float32")]

    m = "ex05_qkv"
    out[m] = [Call(m, "linear", "prompt", {"x": a0.x_normed, "weight": W("layers.0.attention.wq.weight")})]
    out[m] += [Call(m, "project_qkv", name, {"x": a.x_normed, "wq": W("layers.0.attention.wq.weight"), "wk": W("layers.0.attention.wk.weight"),
                                            "wv": W("layers.0.attention.wv.weight"), "n_heads": args.n_heads, "n_kv_heads": args.n_kv_heads},
                    outputs=("q", "k", "v")) for name, a in acts.items()]

    m = "ex06_rope"
    base = {hd: ex06_rope.precompute_freqs_cis(hd, 2, 500000.0)[1].angle() for hd in (64, 128)}  # f_i = angle at position 1
    out[m] = [Call(m, "apply_scaling", f"head_dim{hd}_factor{int(f)}", {"freqs": base[hd], "scale_factor": f}, tolerance="float32")
              for hd in (64, 128) for f in (8.0, 32.0)]
    out[m] += [Call(m, "precompute_freqs_cis", "llama3-8b", {"head_dim": 128, "end": 64, "theta": 500000.0, "scale_factor": None}, tolerance="float32 angles"),
               Call(m, "precompute_freqs_cis", "llama3.2-1b", {"head_dim": 64, "end": 64, "theta": 500000.0, "scale_factor": 32.0}, tolerance="float32 angles")]
    out[m] += [Call(m, "precompute_freqs_cis", name, {"head_dim": args.head_dim, "end": len(a.ids), "theta": args.rope_theta,
                                                     "scale_factor": args.rope_scale_factor}, tolerance="float32 angles") for name, a in acts.items()]
    out[m] += [Call(m, "apply_rope", f"{name}_{which}", {"x": f32(x), "freqs_cis": a.freqs_cis}, tolerance="float32")
               for name, a in acts.items() for which, x in (("q", a.q), ("k", a.k))]
    if model.is_tiny:
        out[m] += [Call(m, "apply_rope", f"{name}_{which}_bf16", {"x": x, "freqs_cis": a.freqs_cis}, tolerance="bf16 rotation")
                   for name, a in acts.items() for which, x in (("q", a.q), ("k", a.k))]

    m = "ex07_attention"
    out[m] = [Call(m, "causal_mask", f"seq{s}_start{p}", {"seqlen": s, "start_pos": p}) for s, p in ((17, 0), (4, 13), (1, 16))]
    head = lambda a, h, cast: {"q": cast(a.q_rot[:, h]), "k": cast(a.k_rot[:, h // args.n_rep]), "v": cast(a.v[:, h // args.n_rep]), "mask": a.mask}  # noqa: E731
    out[m] += [Call(m, "attention", f"{name}_head{h}", head(a, h, f32), tolerance="float32") for name, a in acts.items() for h in (0, args.n_heads - 1)]
    if model.is_tiny:
        out[m] += [Call(m, "attention", "prompt42_head0_bf16", head(a0, 0, lambda t: t), tolerance="bf16 attention")]

    m = "ex08_multi_head_attention"
    out[m] = [Call(m, "repeat_kv", name, {"x": a.k_rot, "n_rep": args.n_rep}) for name, a in acts.items()]
    gqa = lambda a, cast: {"q": cast(a.q_rot), "k": cast(a.k_rot), "v": cast(a.v), "mask": a.mask}  # noqa: E731
    out[m] += [Call(m, "grouped_query_attention", name, gqa(a, f32), tolerance="float32") for name, a in acts.items()]
    attn = lambda a, cast, dtype: {"x": cast(a.x_normed), "weights": Ref("weights", dtype=dtype), "layer_id": 0, "args": Ref("args"),  # noqa: E731
                                   "freqs_cis": a.freqs_cis, "mask": a.mask}
    out[m] += [Call(m, "self_attention", name, attn(a, f32, "float32"), tolerance="float32 layers") for name, a in acts.items()]
    out[m] += [Call(m, "self_attention", case, {"x": f32(a0.x_normed), "weights": Ref("weights", dtype="float32"), "layer_id": 0,
                                                "args": Ref("args"), "freqs_cis": a0.freqs_cis, "chunks": chunks},
                    tolerance="float32 layers", driver="drive_layer_cached") for case, chunks in a0.cached.items()]
    if model.is_tiny:
        out[m] += [Call(m, "grouped_query_attention", "prompt42_bf16", gqa(a0, lambda t: t), tolerance="bf16 attention"),
                   Call(m, "self_attention", "prompt42_bf16", attn(a0, lambda t: t, ""), tolerance="bf16 attention")]

    m = "ex09_feed_forward"  # bf16 on the tiny models; on trained ones bf16 roundings of SiLU take 0.76 of "bf16 layer"
    ffn = lambda dtype: {f"w{i}": Ref("weight", f"layers.0.feed_forward.w{i}.weight", dtype) for i in (1, 2, 3)}  # noqa: E731
    out[m] = [Call(m, "feed_forward", name, {"x": f32(a.h_normed), **ffn("float32")}, tolerance="float32 layers") for name, a in acts.items()]
    if model.is_tiny:
        out[m] += [Call(m, "feed_forward", f"{name}_bf16", {"x": a.h_normed, **ffn("")}, tolerance="bf16 layer") for name, a in acts.items()]

    m = "ex10_transformer_block"
    block = lambda a, layer_id, x, dtype: {"x": x, "weights": Ref("weights", dtype=dtype), "layer_id": layer_id, "args": Ref("args"),  # noqa: E731
                                           "freqs_cis": a.freqs_cis, "mask": a.mask}
    out[m] = [Call(m, "transformer_block", f"{name}_layer0", block(a, 0, f32(a.x), "float32"), tolerance="float32 layers") for name, a in acts.items()]
    last = args.n_layers - 1
    out[m] += [Call(m, "transformer_block", f"last_layer{last}", block(a0, last, f32(a0.last_input), "float32"), tolerance="float32 layers"),
               *(Call(m, "transformer_block", case, {"x": f32(a0.last_input), "weights": Ref("weights", dtype="float32"), "layer_id": last,
                                                     "args": Ref("args"), "freqs_cis": a0.freqs_cis, "chunks": chunks},
                      tolerance="float32 layers", driver="drive_layer_cached") for case, chunks in a0.cached.items())]
    if model.is_tiny:
        out[m] += [Call(m, "transformer_block", "prompt42_layer0_bf16", block(a0, 0, a0.x, ""), tolerance="bf16 attention")]

    m = "ex11_forward"
    fwd = lambda a, dtype: {"tokens": a.tokens, "weights": Ref("weights", dtype=dtype), "args": Ref("args")}  # noqa: E731
    out[m] = [Call(m, "forward", name, fwd(a, "float32"), tolerance="float32 layers", reduce="logits") for name, a in acts.items()]
    out[m] += [Call(m, "forward", case, {**fwd(a0, "float32"), "chunks": chunks}, tolerance="float32 layers", driver="drive_forward_cached")
               for case, chunks in a0.cached.items()]
    if model.is_tiny:
        out[m] += [Call(m, "forward", "prompt42_bf16", fwd(a0, ""), tolerance="bf16 attention", reduce="logits")]
    logits = torch.randn(4, 1000, generator=torch.Generator().manual_seed(42))  # every row peaks at its own column
    out[m] += [Call(m, "next_token", "logits", {"logits": logits})]
    gen = lambda ids, n, stop_tokens, dtype="float32": {"prompt_ids": ids, "weights": Ref("weights", dtype=dtype), "args": Ref("args"),  # noqa: E731
                                                        "max_new_tokens": n, "stop_tokens": stop_tokens}
    first = [t for t, _ in ex12_generation.generate(a0.ids, model.weights("float32"), args, 4)]
    forced = [first[3]]  # a stop token the tiny models meet at the fourth step (random weights never choose EOS)
    short = {name: a for name, a in acts.items() if len(a.ids) <= GENERATION_PROMPT_TOKENS}
    out[m] += [Call(m, "generate_uncached", name, gen(a.ids, n_new // 2, stops), tolerance="float32 layers", driver="drive_generation")
               for name, a in short.items()]
    out[m] += [Call(m, "generate_uncached", "stop_token", gen(a0.ids, n_new // 2, forced), tolerance="float32 layers", driver="drive_generation")]

    m = "ex12_generation"
    out[m] = [Call(m, "KVCache", name, {"n_layers": args.n_layers, "max_seq_len": len(a.ids) + 4, "n_kv_heads": args.n_kv_heads,
                                        "head_dim": args.head_dim, "dtype": str(a.k_rot.dtype).removeprefix("torch."),
                                        "k_prefill": a.k_rot, "v_prefill": a.v, "k_steps": a.k_rot[-4:] * 0.5, "v_steps": a.v[-4:] * 0.5},
                   driver="drive_kv_cache") for name, a in acts.items()]
    out[m] += [Call(m, "generate", name, gen(a.ids, n_new, stops), tolerance="float32 layers", driver="drive_generate")
               for name, a in short.items()]
    out[m] += [Call(m, "generate", "stop_token", gen(a0.ids, n_new, forced), tolerance="float32 layers", driver="drive_generate")]
    if model.is_tiny:  # the cache's dtype must follow the weights'
        out[m] += [Call(m, "generate", "prompt42_bf16", gen(a0.ids, n_new, stops, ""), tolerance="bf16 attention", driver="drive_generate")]
    out.update(extra_calls(model, acts, n_new))
    out |= int8_calls(model, a0)
    out |= parallel_calls(model, a0)
    return out


# The extras (after the core): their drivers and golden calls.

def _int(value, label: str) -> int:
    """value, checked to be the Python int a token id must be."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise GradeFailure(pick(f"{label} returned a {type(value).__name__}: return a Python int, e.g. int(torch.multinomial(...))",
                                f"{label} 返回了 {type(value).__name__}：应返回 Python int，例如 int(torch.multinomial(...))"))
    return value


def drive_sample(sample, logits, temperature, top_k, top_p, seed, draws):
    """draws tokens from each row of logits, all with one generator seeded with seed."""
    generator = torch.Generator().manual_seed(seed)
    return {"tokens": [[_int(sample(row, temperature, top_k, top_p, generator), "sample") for _ in range(draws)] for row in logits]}


def drive_sampler(Sampler, logits, temperature, top_k, top_p, seed, draws):
    """draws tokens from each row of logits with one Sampler."""
    sampler = Sampler(temperature, top_k, top_p, seed)
    return {"tokens": [[_int(sampler(row), "Sampler") for _ in range(draws)] for row in logits]}


def drive_sampled_generate(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens, temperature, top_k, top_p, seed):
    """generate with the reference's Sampler (generate is graded on its own), through one cache; the tokens, which must
    be exactly the reference's (a draw has no near tie to forgive), and the logits."""
    from solutions.ex13_sampling import Sampler

    with impls.spy(generate, "forward") as calls:
        steps = list(generate(prompt_ids, weights, args, max_new_tokens, stop_tokens, sampler=Sampler(temperature, top_k, top_p, seed)))
    check_cache_use(calls)
    out = generation(steps, generate.__name__, stop_tokens)
    return {"tokens": out["tokens"], "logits_head": out["logits_head"][:, :SAMPLED_LOGITS]}


def drive_chat(Chat, weights, args, encoding, chat_format, stop_tokens, system, turns, max_new_tokens):
    """A conversation: for each turn [content, taken], ask, read taken reply tokens (all of them when None) and close
    the reply, as Ctrl-C does. Checks that the turns fed forward only what the cache lacked, and that chat.tokens is
    the dialog with the replies in it; returns the replies, compared as generated tokens are."""
    from solutions import ex14_chat as reference

    chat = Chat(weights, args, encoding, chat_format, stop_tokens, CHAT_MAX_SEQ_LEN, system)
    steps, expected, pending = [], [], ([{"role": "system", "content": system}] if system else [])
    with impls.spy(Chat, "forward") as calls:
        for content, taken in turns:
            reply = chat.ask(content, max_new_tokens)
            got = list(itertools.islice(reply, taken))
            if hasattr(reply, "close"):
                reply.close()
            steps += got
            turn = reference.encode_dialog(encoding, [*pending, {"role": "user", "content": content}], chat_format)
            reply_ids = [t for t, _ in got] if all(isinstance(s, tuple) and len(s) == 2 for s in got) else []
            expected += (turn[1:] if expected and chat_format == "llama3" else turn) + reply_ids + reference.end_of_turn(encoding, chat_format)
            pending = []
    check_cache_use(calls, "Chat.ask")
    report = value_mismatch("chat.tokens", getattr(chat, "tokens", None), expected)
    if report:
        raise GradeFailure(pick("after the conversation, chat.tokens is not the dialog with the replies in it (each turn's "
                                "messages and open assistant header, the reply, the end of turn):\n",
                                "对话结束后，chat.tokens 不是包含回复的对话（每一轮的消息和打开的 assistant 头、回复、轮次结束符）：\n") + report)
    out = generation(steps, "Chat.ask", stop_tokens)
    return {**out, "logits_head": out["logits_head"][:, :SAMPLED_LOGITS]}


CHAT_MAX_SEQ_LEN = 256
TOP_K = 5  # predictions per position in exercise 15's tables


def drive_logits_table(forward_unmasked, tokens, weights, args):
    """What is compared of a forward's logits [seq, vocab]: the first columns of every row, and every row's TOP_K
    probabilities (sorted values, so near-tied tokens may swap)."""
    from solutions.ex15_experiments import top_predictions

    logits = forward_unmasked(tokens, weights, args)
    head = logits_head(logits, "forward_unmasked")["head"]
    return {"head": head[:, :SAMPLED_LOGITS], "top_probs": top_predictions(logits, TOP_K)[0]}

DRIVERS.update({f.__name__: f for f in (drive_sample, drive_sampler, drive_sampled_generate, drive_chat, drive_logits_table)})
SAMPLED_LOGITS = 256  # logit columns kept of each sampled step: the tokens are what sampling is graded on


def sampling_logits() -> torch.Tensor:
    """[4, 512] synthetic logits: flat, peaked like a language model's, whole numbers (ties at every k), one dominant token."""
    g = torch.Generator().manual_seed(13)
    rows = torch.randn(4, 512, generator=g) * torch.tensor([[1.0], [3.0], [2.0], [1.0]])
    rows[2] = rows[2].round()
    rows[3, 7] = 12.0
    return rows


# (temperature, top_k, top_p) of the sampling cases
SETTINGS = {"t1": (1.0, None, None), "t0.6_p0.9": (0.6, None, 0.9), "t0.8_k40_p0.95": (0.8, 40, 0.95), "t1.5_k10": (1.5, 10, None)}


def extra_calls(model, acts: dict, n_new: int) -> dict[str, list[Call]]:
    """The golden calls of the extras, by exercise module."""
    name0, a0 = next(iter(acts.items()))
    stops = list(model.checkpoint.tokenizer.stop_ids)
    out: dict[str, list[Call]] = {}

    m = "ex13_sampling"
    logits = sampling_logits()
    settings = lambda name: dict(zip(("temperature", "top_k", "top_p"), SETTINGS[name]))  # noqa: E731
    out[m] = [Call(m, "top_k_filter", f"k{k}", {"logits": logits, "k": k}, tolerance="float32") for k in (1, 10, 100)]
    out[m] += [Call(m, "top_p_filter", f"p{p}", {"logits": logits, "p": p}, tolerance="float32") for p in (0.05, 0.5, 0.9)]
    out[m] += [Call(m, "probabilities", name, {"logits": logits, **settings(name)}, tolerance="float32") for name in SETTINGS]
    out[m] += [Call(m, "sample", f"{name}_seed{seed}", {"logits": logits, **settings(name), "seed": seed, "draws": 8}, driver="drive_sample")
               for name, seed in (("t1", 0), ("t0.8_k40_p0.95", 1), ("t1.5_k10", 2))]
    out[m] += [Call(m, "sample", "greedy", {"logits": logits, "temperature": 0.0, "top_k": None, "top_p": None, "seed": 0, "draws": 2},
                    driver="drive_sample")]
    out[m] += [Call(m, "Sampler", f"{name}_seed{seed}", {"logits": logits, **settings(name), "seed": seed, "draws": 8}, driver="drive_sampler")
               for name, seed in (("t0.6_p0.9", 0), ("t0.8_k40_p0.95", 3))]
    gen = {"prompt_ids": a0.ids, "weights": Ref("weights", dtype="float32"), "args": Ref("args"), "max_new_tokens": n_new // 2,
           "stop_tokens": stops}
    out[m] += [Call(m, "generate", f"{name0}_{name}_seed{seed}", {**gen, **settings(name), "seed": seed}, tolerance="float32 layers",
                    driver="drive_sampled_generate") for name, seed in (("t0.8_k40_p0.95", 0), ("t1", 1))]

    m = "ex14_chat"
    own = model.checkpoint.tokenizer.chat_format
    formats = {"llama3": Ref("encoding")} if own == "llama3" else {}
    formats["chatml"] = Ref("encoding", "chatml")  # the trained model's own; on Llama 3's tokenizer two reserved tokens renamed
    out[m] = [Call(m, "encode_header", f"{fmt}_{role}", {"encoding": enc, "role": role, "chat_format": fmt})
              for fmt, enc in formats.items() for role in ("system", "user", "assistant")]
    out[m] += [Call(m, "end_of_turn", fmt, {"encoding": enc, "chat_format": fmt}) for fmt, enc in formats.items()]
    out[m] += [Call(m, "encode_message", f"{fmt}_{name}", {"encoding": enc, "message": msgs[-1], "chat_format": fmt})
               for fmt, enc in formats.items() for name, msgs in DIALOGS.items()]
    out[m] += [Call(m, "encode_dialog", f"{fmt}_{name}", {"encoding": enc, "messages": msgs, "chat_format": fmt})
               for fmt, enc in formats.items() for name, msgs in DIALOGS.items()]
    chat = {"weights": Ref("weights", dtype="float32"), "args": Ref("args"), "max_new_tokens": n_new // 2}
    stops_of = {"llama3": stops, "chatml": stops if own == "chatml" else [model.resolve(formats["chatml"]).encode_single_token("<|im_end|>")]}
    out[m] += [Call(m, "Chat", f"{fmt}_{case}", {**chat, "encoding": enc, "chat_format": fmt, "stop_tokens": stops_of[fmt],
                                                 "system": system, "turns": turns}, tolerance="float32 layers", driver="drive_chat")
               for fmt, enc in formats.items() for case, (system, turns) in CONVERSATIONS.items()]

    m = "ex15_experiments"
    args, last = model.checkpoint.args, model.checkpoint.args.n_layers - 1
    model_in = {"tokens": a0.tokens, "weights": Ref("weights", dtype="float32"), "args": Ref("args")}
    out[m] = [Call(m, "attention_probs", f"{name0}_layer{layer}", {**model_in, "layer_id": layer}, tolerance="float32 layers")
              for layer in sorted({0, 1, last})]
    out[m] += [Call(m, "forward_unmasked", name0, model_in, tolerance="float32 layers", driver="drive_logits_table")]
    table = torch.randn(6, 512, generator=torch.Generator().manual_seed(15)) * 3  # [seq, vocab]
    out[m] += [Call(m, "top_predictions", f"k{k}", {"logits": table, "k": k}, outputs=("probs", "ids"), tolerance="float32") for k in (1, TOP_K)]
    freqs_cis = ex06_rope.precompute_freqs_cis(args.head_dim, 64, args.rope_theta, args.rope_scale_factor)  # [64, head_dim // 2]
    out[m] += [Call(m, "rope_rotation", f"query_head{h}", {"x": a0.q[0, h].float(), "freqs_cis": freqs_cis}, tolerance="float32 angles")
               for h in (0, args.n_heads - 1)]
    return out


# Dialogs the chat formats are graded on: the published example, spaces to strip, an assistant turn, text that looks
# like a special token, and other scripts.
DIALOGS = {
    "published": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hi"}],
    "strip": [{"role": "user", "content": "  What is 6 x 7?\n\n"}],
    "turns": [{"role": "user", "content": "Name a llama."}, {"role": "assistant", "content": "Lima, from Peru."},
              {"role": "user", "content": "  Another one, please: <|eot_id|> <|im_end|>"}],
    "unicode": [{"role": "system", "content": "用中文回答。"}, {"role": "user", "content": "生命、宇宙以及一切的答案是什么？🦙"}],
}
# (system, [[content, tokens to read before closing the reply (None: all)], ...]): the second conversation's first
# reply is cut short after two tokens, as Ctrl-C does
CONVERSATIONS = {
    "two_turns": ("You are a helpful assistant.", [["What is the capital of France?", None], ["And of Italy?", None]]),
    "interrupted": (None, [["Tell me a long story.", 2], ["Shorter, please.", None]]),
}



# The extras after the core: exercise 16 (int8 weights) and exercise 17 (tensor parallelism over N processes).

LAYER0 = tuple(f"layers.0.{n}.weight" for n in ("attention.wq", "attention.wk", "attention.wv", "attention.wo", "feed_forward.w1",
                                                 "feed_forward.w2", "feed_forward.w3"))
TIE_MARGIN = 1e-3  # in steps: how far from x.5 every value of a graded row lies
INT8_ROWS = 16  # rows of each matrix quantize is graded on
LOGITS_STRIDE = 251  # of whole-vocabulary logits, every 251st column: about 500, some in every rank's slice
HEAD_COLUMNS = 256  # of the cached path's and generation's logits, the first columns kept (a cache's fault moves them all)
PARALLEL_RANKS = 4  # the most processes a graded call starts


def _short(name: str) -> str:
    """layers.0.attention.wq.weight -> wq"""
    return name.split(".")[-2]


def tie_free_rows(weight: torch.Tensor, n: int = INT8_ROWS) -> torch.Tensor:
    """Up to n rows of weight none of whose values / step falls within TIE_MARGIN of a rounding tie (x.5): there,
    correct programs that order the arithmetic differently still round every value alike."""
    from solutions.ex16_int8 import quantize

    steps = weight.float() / quantize(weight).scale[:, None]  # [out, in], each within [-127, 127]
    clear = ((steps - steps.floor() - 0.5).abs() > TIE_MARGIN).all(dim=1)  # [out]
    return clear.nonzero()[:n, 0]


def sampled(logits, label: str) -> dict[str, torch.Tensor]:
    """Of logits [seq, vocab_size], every LOGITS_STRIDE-th column of every position."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise GradeFailure(pick(f"{label} should return logits [seq, vocab_size], got {shape}",
                                f"{label} 应返回 logits [seq, vocab_size]，实际得到 {shape}"))
    return {"columns": logits[:, ::LOGITS_STRIDE]}


def int8_reference(weights):
    """weights with the reference's int8 matrices: the input of the learner's int8 forward."""
    from solutions import ex16_int8
    from ..formats.int8 import quantize_model

    return quantize_model(weights, ex16_int8)


def drive_int8_weight(fn, q, scale, x=None):
    """dequantize(w) or int8_linear(x, w) on the reference's Int8Weight(q, scale). The inputs are copies: tensors read
    from a golden file may start off a 64-byte boundary, and torch's int8 kernel crashes the process on those."""
    from solutions.ex16_int8 import Int8Weight

    w, x = Int8Weight(q.clone(), scale.clone()), x if x is None else x.clone()
    return {"out": fn(w) if x is None else fn(x, w)}


def drive_is_quantized(is_quantized, names):
    """The names is_quantized says yes to."""
    said = {name: is_quantized(name) for name in names}
    for name, answer in said.items():
        if not isinstance(answer, bool):
            raise GradeFailure(pick(f"is_quantized({name!r}) returned {type(answer).__name__}: return True or False",
                                    f"is_quantized({name!r}) 返回了 {type(answer).__name__}：应返回 True 或 False"))
    return {"quantized": sorted(name for name, answer in said.items() if answer)}


def drive_int8_forward(forward, tokens, weights, args):
    """The int8 forward on the reference's int8 weights; some columns of every position's logits."""
    return sampled(forward(tokens, int8_reference(weights), args), f"{forward.__name__}")


def _first_columns(out: dict) -> dict:
    """drive_forward_cached's or generation()'s outputs with only the first HEAD_COLUMNS logits kept."""
    return {k: v[:, :HEAD_COLUMNS] if isinstance(v, torch.Tensor) and v.dim() == 2 else v for k, v in out.items()}


def drive_int8_forward_cached(forward, tokens, weights, args, chunks):
    return _first_columns(drive_forward_cached(forward, tokens, int8_reference(weights), args, chunks))


def int8_calls(model, a0: Activations) -> dict[str, list[Call]]:
    """Exercise 16: quantize on rows of layer 0's matrices (rows away from rounding ties), dequantize and int8_linear
    on the reference's int8 weights, is_quantized on every name, the int8 forward on the tiny models."""
    from solutions import ex16_int8

    m = "ex16_int8"
    w = model.weights()
    rows = {name: w[name][tie_free_rows(w[name])] for name in LAYER0}  # [<= INT8_ROWS, in] each, the checkpoint's dtype
    out = [Call(m, "quantize", _short(name), {"weight": r}, outputs=("q", "scale"), tolerance="float32") for name, r in rows.items()]
    out += [Call(m, "quantize", "wq_float32", {"weight": rows[LAYER0[0]].float()}, outputs=("q", "scale"), tolerance="float32")]
    out += [Call(m, "dequantize", _short(name), dict(ex16_int8.quantize(r)._asdict()), tolerance="float32", driver="drive_int8_weight")
            for name, r in rows.items()]
    wq, w1 = ex16_int8.quantize(w[LAYER0[0]]), ex16_int8.quantize(w[LAYER0[4]])
    out += [Call(m, "int8_linear", "prompt42_wq", {"x": a0.x_normed, **wq._asdict()}, driver="drive_int8_weight"),
            Call(m, "int8_linear", "prompt42_w1_float32", {"x": a0.h_normed.float(), **w1._asdict()}, tolerance="float32",
                 driver="drive_int8_weight")]
    out += [Call(m, "is_quantized", "names", {"names": list(model.checkpoint.weights)}, driver="drive_is_quantized")]
    if model.is_tiny:  # on the trained model, tests/test_trained_int8.py measures the int8 model against bf16 instead
        fwd = lambda dtype: {"tokens": a0.tokens, "weights": Ref("weights", dtype=dtype), "args": Ref("args")}  # noqa: E731
        out += [Call(m, "forward", "prompt42", fwd("float32"), tolerance="float32 layers", driver="drive_int8_forward"),
                Call(m, "forward", "prompt42_bf16", fwd(""), tolerance="bf16 attention", driver="drive_int8_forward")]
        out += [Call(m, "forward", case, {**fwd("float32"), "chunks": chunks}, tolerance="float32 layers", driver="drive_int8_forward_cached")
                for case, chunks in a0.cached.items()]
    return {m: out}


# Exercise 17's collectives run on N ranks (grader.engine.ranks). drive_ranks runs in the test's process; the
# rank_* jobs run on every rank, each on its own share of the weights, cut by the reference's shard_weights.

def drive_split_dim(split_dim, names):
    said = {name: split_dim(name) for name in names}
    for name, dim in said.items():
        if dim not in (0, 1, None) or isinstance(dim, bool):
            raise GradeFailure(pick(f"split_dim({name!r}) returned {dim!r}: return 0, 1 or None",
                                    f"split_dim({name!r}) 返回了 {dim!r}：应返回 0、1 或 None"))
    return {"dims": said}


def drive_shard_weights(shard_weights, weights, args, rank, world_size):
    """The names and shapes of rank's share, layer 0's norm, and four rows of layer 0's matrices and the vocabulary's two."""
    got = shard_weights(weights, args, rank, world_size)
    if not isinstance(got, dict) or not all(isinstance(t, torch.Tensor) for t in got.values()):
        raise GradeFailure(pick(f"shard_weights should return a dict of tensors, got {type(got).__name__}",
                                f"shard_weights 应返回由张量组成的 dict，实际得到 {type(got).__name__}"))
    out = {"names": sorted(got), "shapes": {name: list(t.shape) for name, t in got.items()}}
    out |= {name: got[name] for name in ("layers.0.attention_norm.weight",) if name in got}
    out |= {f"{name}[rows]": got[name][[0, 1, -2, -1]] for name in (*LAYER0, "tok_embeddings.weight", "output.weight")
            if name in got and got[name].dim() == 2 and got[name].shape[0] >= 2}
    return out


def drive_local_args(local_args, params, world_size):
    """local_args of a released model's params, as a dict."""
    import dataclasses

    from solutions.ex02_checkpoint import ModelArgs, model_args

    got = local_args(model_args(params), world_size)
    if not isinstance(got, ModelArgs):
        raise GradeFailure(pick(f"local_args should return a ModelArgs (dataclasses.replace), got {type(got).__name__}",
                                f"local_args 应返回 ModelArgs（dataclasses.replace），实际得到 {type(got).__name__}"))
    return {**dataclasses.asdict(got), "head_dim": got.head_dim}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def drive_ranks(target, world_size, job, **kwargs):
    """RANK_JOBS[job] with target on world_size ranks: rank 0's outputs, and which ranks ended with other values
    (after the collectives every rank must hold the same result)."""
    from . import ranks

    results = ranks.run(world_size, RANK_JOBS[job], target, kwargs)
    return {**results[0], "ranks_differing_from_rank_0": [r for r, res in enumerate(results) if not _same(res, results[0])]}


def rank_weights(folder, dtype: str):
    """This rank's args and share of a checkpoint's weights (the reference's shard_weights), in dtype ("": the file's)."""
    import torch.distributed as dist

    from ..formats import checkpoint, shards

    key = (str(folder), dtype)
    if key not in _RANK_WEIGHTS:
        args, share = shards.rank_share(folder, dist.get_rank(), dist.get_world_size())
        _RANK_WEIGHTS[key] = args, checkpoint.cast(share, dtype) if dtype else share
    return _RANK_WEIGHTS[key]


_RANK_WEIGHTS: dict = {}


def _local_args(args):
    import torch.distributed as dist

    from solutions.ex17_tensor_parallel import local_args

    return local_args(args, dist.get_world_size())


def rank_embed(parallel_embed, folder, dtype, tokens):
    _, w = rank_weights(folder, dtype)
    return {"out": parallel_embed(tokens, w["tok_embeddings.weight"])}


def rank_attention(parallel_attention, folder, dtype, x, layer_id, freqs_cis, mask=None, chunks=None):
    args, w = rank_weights(folder, dtype)
    if chunks is not None:
        return drive_layer_cached(parallel_attention, x, w, layer_id, args, freqs_cis, chunks, _local_args(args))
    return {"out": parallel_attention(x, w, layer_id, args, freqs_cis, mask)}


def rank_feed_forward(parallel_feed_forward, folder, dtype, x, layer_id):
    _, w = rank_weights(folder, dtype)
    p = f"layers.{layer_id}.feed_forward."
    return {"out": parallel_feed_forward(x, w[p + "w1.weight"], w[p + "w2.weight"], w[p + "w3.weight"])}


def rank_forward(parallel_forward, folder, dtype, tokens, chunks=None):
    args, w = rank_weights(folder, dtype)
    if chunks is not None:
        return _first_columns(drive_forward_cached(parallel_forward, tokens, w, args, chunks, _local_args(args)))
    return sampled(parallel_forward(tokens, w, args), parallel_forward.__name__)


def rank_generate(parallel_generate, folder, dtype, prompt_ids, max_new_tokens, stop_tokens):
    args, w = rank_weights(folder, dtype)
    return _first_columns(drive_generate(parallel_generate, prompt_ids, w, args, max_new_tokens, stop_tokens, forward="parallel_forward",
                                         n_kv_heads=_local_args(args).n_kv_heads))


def rank_own_generate(parallel_generate, folder, prompt_ids, max_new_tokens, stop_tokens):
    """parallel_generate on the share its own module's shard_weights cuts, in float32: the tokens."""
    import inspect
    import sys

    import torch.distributed as dist

    from ..formats import checkpoint

    ck = checkpoint.load(folder)
    own = sys.modules[inspect.unwrap(parallel_generate).__module__].shard_weights
    share = checkpoint.cast(own(ck.weights, ck.args, dist.get_rank(), dist.get_world_size()), "float32")
    return [token for token, _ in parallel_generate(prompt_ids, share, ck.args, max_new_tokens, stop_tokens)]


RANK_JOBS = {f.__name__: f for f in (rank_embed, rank_attention, rank_feed_forward, rank_forward, rank_generate)}


def parallel_calls(model, a0: Activations) -> dict[str, list[Call]]:
    """Exercise 17: the sharding on every model; the collectives on the tiny ones, on every rank count up to
    PARALLEL_RANKS that splits them (1, 2 and 4 for tiny-llama3, whose 2 K/V heads are repeated on 4 ranks; 1 and 2
    for tiny-llama3.2), each against the reference's result on as many ranks."""
    from solutions import ex17_tensor_parallel as tp

    from ..formats.shards import rank_counts

    m = "ex17_tensor_parallel"
    args = model.checkpoint.args
    counts = rank_counts(args, PARALLEL_RANKS)
    pairs = [(n, r) for n in counts if n > 1 for r in (0, n - 1)]
    out = [Call(m, "split_dim", "names", {"names": list(model.checkpoint.weights)}, driver="drive_split_dim")]
    out += [Call(m, "shard", f"{_short(name)}_rank{r}_of_{n}", {"weight": Ref("weight", name), "dim": tp.split_dim(name), "rank": r,
                                                                "world_size": n})
            for name in (LAYER0[0], LAYER0[3], LAYER0[4], LAYER0[5]) for n, r in pairs]
    out += [Call(m, "shard_kv", f"wk_rank{r}_of_{n}", {"weight": Ref("weight", LAYER0[1]), "n_kv_heads": args.n_kv_heads, "rank": r,
                                                       "world_size": n}) for n in counts for r in range(n)]
    out += [Call(m, "shard_weights", f"rank{r}_of_{n}", {"weights": Ref("weights"), "args": Ref("args"), "rank": r, "world_size": n},
                 driver="drive_shard_weights") for n, r in [(1, 0), *pairs]]
    out += [Call(m, "local_args", f"{name}_{n}_ranks", {"params": RELEASED[name], "world_size": n}, driver="drive_local_args")
            for name, n in (("llama3-8b", 1), ("llama3-8b", 4), ("llama3-70b", 8), ("llama3.1-405b", 16), ("llama3.2-1b", 2))]
    if not model.is_tiny:  # N processes of a real model's float32 share each: too much for a graded test
        return {m: out}

    def ranks_call(function, n, job, case="", tolerance="float32 layers", **kwargs):
        return Call(m, function, f"{n}_ranks{case}", {"world_size": n, "job": job, "folder": Ref("folder"), **kwargs},
                    tolerance=tolerance, driver="drive_ranks")

    x, h = a0.x_normed.float(), a0.h_normed.float()
    gen = {"prompt_ids": a0.ids, "max_new_tokens": 16, "stop_tokens": list(model.checkpoint.tokenizer.stop_ids)}
    for n in counts:
        out += [ranks_call("parallel_embed", n, "rank_embed", dtype="", tokens=a0.tokens, tolerance="bf16"),
                ranks_call("parallel_attention", n, "rank_attention", dtype="float32", x=x, layer_id=0, freqs_cis=a0.freqs_cis, mask=a0.mask),
                ranks_call("parallel_feed_forward", n, "rank_feed_forward", dtype="float32", x=h, layer_id=0),
                ranks_call("parallel_forward", n, "rank_forward", dtype="float32", tokens=a0.tokens),
                ranks_call("parallel_generate", n, "rank_generate", dtype="float32", **gen)]
    n = counts[-1]
    out += [ranks_call("parallel_attention", n, "rank_attention", case="_" + case, dtype="float32", x=x, layer_id=0,
                       freqs_cis=a0.freqs_cis, chunks=chunks) for case, chunks in a0.cached.items()]
    out += [ranks_call("parallel_forward", n, "rank_forward", case="_" + case, dtype="float32", tokens=a0.tokens, chunks=chunks)
            for case, chunks in a0.cached.items()]
    out += [ranks_call("parallel_generate", n, "rank_generate", case="_bf16", dtype="", tolerance="bf16 attention", **gen)]
    return {m: out}


DRIVERS |= {f.__name__: f for f in (drive_int8_weight, drive_is_quantized, drive_int8_forward, drive_int8_forward_cached,
                                    drive_split_dim, drive_shard_weights, drive_local_args, drive_ranks)}
