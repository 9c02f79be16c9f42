"""int8 with the scale from torch.max and a product with the dequantized matrix in float32; a forward of its own,
attention by scaled_dot_product_attention with a boolean mask."""

import torch

from solutions.ex16_int8 import Int8Weight, apply_rope, precompute_freqs_cis, rms_norm


def quantize(weight):
    w = weight.to(torch.float32)
    scale = torch.max(w.abs(), dim=1).values / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp((w / scale.unsqueeze(1)).round(), -127, 127).to(torch.int8)
    return Int8Weight(q=q, scale=scale)


def dequantize(w):
    return w.q.to(torch.float32) * w.scale.unsqueeze(-1)


def int8_linear(x, w):
    return torch.nn.functional.linear(x.float(), dequantize(w)).to(x.dtype)


def is_quantized(name):
    return name.endswith("weight") and "norm" not in name and not name.startswith("tok_embeddings")


def forward(tokens, weights, args, cache=None, start_pos=0):
    n = len(tokens)
    h = weights["tok_embeddings.weight"][tokens]
    freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + n, args.rope_theta, args.rope_scale_factor)
    freqs_cis = freqs_cis[start_pos:start_pos + n]
    for i in range(args.n_layers):
        def w(name, layer=i):
            return weights[f"layers.{layer}.{name}.weight"]

        x = rms_norm(h, w("attention_norm"), args.norm_eps)
        q, k, v = (int8_linear(x, w(f"attention.w{p}")).unflatten(-1, (-1, args.head_dim)) for p in "qkv")
        q, k = apply_rope(q, freqs_cis), apply_rope(k, freqs_cis)
        if cache is not None:
            k, v = cache.update(i, start_pos, k, v)
        o = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=False, enable_gqa=True,
            attn_mask=None if n == 1 else torch.ones(n, start_pos + n, dtype=torch.bool).tril(start_pos))
        h = h + int8_linear(o.transpose(0, 1).flatten(1), w("attention.wo"))
        x = rms_norm(h, w("ffn_norm"), args.norm_eps)
        g = int8_linear(x, w("feed_forward.w1"))
        h = h + int8_linear(g * torch.sigmoid(g) * int8_linear(x, w("feed_forward.w3")), w("feed_forward.w2"))
    return int8_linear(rms_norm(h, weights["norm.weight"], args.norm_eps), weights["output.weight"]).to(torch.float32)
