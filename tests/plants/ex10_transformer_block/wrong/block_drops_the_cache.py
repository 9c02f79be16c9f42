"""The block calls self_attention without its cache and start_pos: generation with the cache breaks."""

from solutions.ex10_transformer_block import feed_forward, rms_norm, self_attention

FAILURE_SAYS = "pass cache and start_pos on"


def transformer_block(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    p = f"layers.{layer_id}."
    normed = rms_norm(x, weights[p + "attention_norm.weight"], args.norm_eps)
    h = x + self_attention(normed, weights, layer_id, args, freqs_cis, mask)
    normed = rms_norm(h, weights[p + "ffn_norm.weight"], args.norm_eps)
    return h + feed_forward(normed, *(weights[p + f"feed_forward.w{i}.weight"] for i in (1, 2, 3)))
