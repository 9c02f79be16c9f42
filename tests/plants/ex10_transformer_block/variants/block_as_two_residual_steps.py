"""The block as one loop over its two sublayers, each x = x + sublayer(norm(x))."""

from solutions.ex10_transformer_block import feed_forward, rms_norm, self_attention


def transformer_block(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    p = f"layers.{layer_id}."

    def attend(h):
        return self_attention(h, weights, layer_id, args, freqs_cis, mask, cache, start_pos)

    def ffn(h):
        return feed_forward(h, *(weights[p + f"feed_forward.w{i}.weight"] for i in (1, 2, 3)))

    for norm, sublayer in (("attention_norm", attend), ("ffn_norm", ffn)):
        x = x + sublayer(rms_norm(x, weights[p + norm + ".weight"], args.norm_eps))
    return x
