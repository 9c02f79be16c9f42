"""Exercise 11, the full forward pass: golden calls and named mistakes."""

import torch

from solutions import ex03_embeddings, ex04_rms_norm, ex05_qkv, ex06_rope, ex07_attention, ex10_transformer_block

from ..engine.calls import Call, Ref
from .checked_cache import drive_forward_cached, drive_generation
from .inputs import GENERATION_PROMPT_TOKENS
from .spec import Spec

spec = Spec("ex11_forward")


@spec.cases
def calls(model, acts) -> list[Call]:
    """forward on each prompt and on the cached path in float32, and (on the tiny models) in bf16; next_token on rows
    that all differ; generate_uncached from each short prompt, and once with a stop token met at the fourth step."""
    m = spec.module
    a0 = next(iter(acts.values()))

    def fwd(a, dtype):
        return {"tokens": a.tokens, "weights": Ref("weights", dtype=dtype), "args": Ref("args")}

    out = [Call(m, "forward", name, fwd(a, "float32"), tolerance="float32 layers", reduce="logits")
           for name, a in acts.items()]
    out += [Call(m, "forward", case, {**fwd(a0, "float32"), "chunks": chunks}, tolerance="float32 layers",
                 driver=drive_forward_cached) for case, chunks in a0.cached.items()]
    if model.is_tiny:
        out += [Call(m, "forward", "prompt42_bf16", fwd(a0, ""), tolerance="bf16 attention", reduce="logits")]
    logits = torch.randn(4, 1000, generator=torch.Generator().manual_seed(42))  # every row peaks at its own column
    out += [Call(m, "next_token", "logits", {"logits": logits})]
    n_new = new_tokens(model) // 2
    out += [Call(m, "generate_uncached", name, generation_inputs(model, a.ids, n_new), tolerance="float32 layers",
                 driver=drive_generation) for name, a in acts.items() if len(a.ids) <= GENERATION_PROMPT_TOKENS]
    out += [Call(m, "generate_uncached", "stop_token", generation_inputs(model, a0.ids, n_new, a0.forced_stop),
                 tolerance="float32 layers", driver=drive_generation)]
    return out


def new_tokens(model) -> int:
    """Tokens a graded generation asks for: fewer on a trained or real model, where each costs more."""
    return 16 if model.is_tiny else 8


def generation_inputs(model, ids: list[int], n: int, stop_tokens=None, dtype: str = "float32") -> dict:
    """The inputs of a generator: a prompt, the weights in dtype, and the model's own stop tokens unless given."""
    stops = list(model.checkpoint.tokenizer.stop_ids) if stop_tokens is None else stop_tokens
    return {"prompt_ids": ids, "weights": Ref("weights", dtype=dtype), "args": Ref("args"), "max_new_tokens": n,
            "stop_tokens": stops}


@spec.mistake("forward", "positions_from_zero",
              en="positions restart at 0 on every call: the tokens sit at positions start_pos .. start_pos + seq - 1, "
                 "so take freqs_cis[start_pos : start_pos + seq]",
              zh="每次调用位置都从 0 重新开始：这些 token 位于 start_pos .. start_pos + seq - 1，所以要取 "
                 "freqs_cis[start_pos : start_pos + seq]")
def forward_positions_from_zero(tokens, weights, args, cache=None, start_pos=0):
    seqlen = tokens.shape[0]
    h = ex03_embeddings.embed(tokens, weights["tok_embeddings.weight"])
    freqs_cis = ex06_rope.precompute_freqs_cis(args.head_dim, seqlen, args.rope_theta, args.rope_scale_factor)
    mask = ex07_attention.causal_mask(seqlen, start_pos) if seqlen > 1 else None
    for layer_id in range(args.n_layers):
        h = ex10_transformer_block.transformer_block(h, weights, layer_id, args, freqs_cis, mask, cache, start_pos)
    h = ex04_rms_norm.rms_norm(h, weights["norm.weight"], args.norm_eps)
    return ex05_qkv.linear(h, weights["output.weight"]).float()


@spec.mistake("forward", "no_final_norm",
              en="the final RMSNorm (norm.weight) is missing: normalise after the last layer, before the output "
                 "projection",
              zh="缺少最后的 RMSNorm（norm.weight）：最后一层之后、输出投影之前要再归一化一次")
def forward_without_final_norm(tokens, weights, args, cache=None, start_pos=0):
    seqlen = tokens.shape[0]
    h = ex03_embeddings.embed(tokens, weights["tok_embeddings.weight"])
    end = start_pos + seqlen
    freqs_cis = ex06_rope.precompute_freqs_cis(args.head_dim, end, args.rope_theta, args.rope_scale_factor)
    mask = ex07_attention.causal_mask(seqlen, start_pos) if seqlen > 1 else None
    for layer_id in range(args.n_layers):
        h = ex10_transformer_block.transformer_block(h, weights, layer_id, args, freqs_cis[start_pos:], mask, cache,
                                                     start_pos)
    return ex05_qkv.linear(h, weights["output.weight"]).float()
