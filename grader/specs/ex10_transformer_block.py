"""Exercise 10, the transformer block: golden calls and named mistakes."""

import torch

from solutions import ex04_rms_norm, ex08_multi_head_attention, ex09_feed_forward

from ..engine.calls import Call, Ref
from .checked_cache import drive_layer_cached
from .spec import Spec

spec = Spec("ex10_transformer_block")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Layer 0 on each prompt's embeddings and the last layer on its real input, in float32, the last one also on
    the cached path; and (on the tiny models) layer 0 in bf16."""
    m = spec.module
    a0 = next(iter(acts.values()))
    last = model.checkpoint.args.n_layers - 1

    def block(a, layer_id, x, dtype):
        return {"x": x, "weights": Ref("weights", dtype=dtype), "layer_id": layer_id, "args": Ref("args"),
                "freqs_cis": a.freqs_cis, "mask": a.mask}

    out = [Call(m, "transformer_block", f"{name}_layer0", block(a, 0, a.x.float(), "float32"),
                tolerance="float32 layers") for name, a in acts.items()]
    out += [Call(m, "transformer_block", f"last_layer{last}", block(a0, last, a0.last_input.float(), "float32"),
                 tolerance="float32 layers")]
    out += [Call(m, "transformer_block", case, {"x": a0.last_input.float(), "weights": Ref("weights", dtype="float32"),
                                                "layer_id": last, "args": Ref("args"), "freqs_cis": a0.freqs_cis,
                                                "chunks": chunks},
                 tolerance="float32 layers", driver=drive_layer_cached) for case, chunks in a0.cached.items()]
    if model.is_tiny:
        out += [Call(m, "transformer_block", "prompt42_layer0_bf16", block(a0, 0, a0.x, ""),
                     tolerance="bf16 attention")]
    return out


def block_with_residuals(x, weights, layer_id, args, freqs_cis, mask, cache, start_pos, first_on_normed: bool,
                         second_on_normed: bool) -> torch.Tensor:
    """The reference block, with either residual added to the normed input instead of the stream."""
    p = f"layers.{layer_id}."
    normed = ex04_rms_norm.rms_norm(x, weights[p + "attention_norm.weight"], args.norm_eps)
    h = (normed if first_on_normed else x) + ex08_multi_head_attention.self_attention(
        normed, weights, layer_id, args, freqs_cis, mask, cache, start_pos)
    normed = ex04_rms_norm.rms_norm(h, weights[p + "ffn_norm.weight"], args.norm_eps)
    return (normed if second_on_normed else h) + ex09_feed_forward.feed_forward(
        normed, weights[p + "feed_forward.w1.weight"], weights[p + "feed_forward.w2.weight"],
        weights[p + "feed_forward.w3.weight"])


@spec.mistake("transformer_block", "residual_on_normed",
              en="the residual is added to the normed input: add each sublayer's output to the un-normed stream "
                 "(h = x + attention(norm(x)))",
              zh="残差加在了归一化之后的输入上：每个子层的输出应加到未归一化的残差流上（h = x + attention(norm(x))）")
def block_residual_on_normed(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    return block_with_residuals(x, weights, layer_id, args, freqs_cis, mask, cache, start_pos, True, True)


@spec.mistake("transformer_block", "attention_residual_on_normed",
              en="the first residual is added to the normed input: h = x + attention(norm(x)) adds to x itself, not to "
                 "norm(x) (the second residual is right)",
              zh="第一个残差加在了归一化之后的输入上：h = x + attention(norm(x)) 要加到 x 本身上，而不是 "
                 "norm(x)（第二个残差是对的）")
def block_attention_residual_on_normed(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    return block_with_residuals(x, weights, layer_id, args, freqs_cis, mask, cache, start_pos, True, False)


@spec.mistake("transformer_block", "ffn_residual_on_normed",
              en="the second residual is added to the normed input: out = h + feed_forward(norm(h)) adds to h itself, "
                 "not to norm(h) (the first residual is right)",
              zh="第二个残差加在了归一化之后的输入上：out = h + feed_forward(norm(h)) 要加到 h 本身上，而不是 "
                 "norm(h)（第一个残差是对的）")
def block_ffn_residual_on_normed(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    return block_with_residuals(x, weights, layer_id, args, freqs_cis, mask, cache, start_pos, False, True)
