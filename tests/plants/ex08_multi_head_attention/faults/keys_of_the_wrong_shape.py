"""self_attention passes keys of the wrong shape to exercise 7's attention, which raises inside the reference."""

from solutions.ex08_multi_head_attention import attention


def self_attention(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    return attention(x, x[:, :3], x, mask)
