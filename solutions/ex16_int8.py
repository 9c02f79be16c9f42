"""Exercise 16, reference: int8 weight-only quantization, symmetric and per output channel."""

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex06_rope import apply_rope, precompute_freqs_cis
from .ex07_attention import causal_mask
from .ex08_multi_head_attention import grouped_query_attention

QMAX = 127  # symmetric: q in [-127, 127], so -w quantizes to -q
SMALLEST_SCALE = 1e-12  # the scale of an all-zero row: any positive value keeps 0 / scale finite


class Int8Weight(NamedTuple):
    """A weight matrix as int8 values and one float32 scale per output row: weight ~ q * scale[:, None]."""

    q: torch.Tensor  # [out, in] int8
    scale: torch.Tensor  # [out] float32


def quantize(weight: torch.Tensor) -> Int8Weight:
    """Each row's largest magnitude maps to 127; every value rounds to the nearest step of that row."""
    w = weight.float()  # [out, in]
    scale = w.abs().amax(dim=1).clamp_min(SMALLEST_SCALE * QMAX) / QMAX  # [out]
    q = torch.round(w / scale[:, None]).clamp(-QMAX, QMAX).to(torch.int8)  # [out, in]
    return Int8Weight(q, scale)


def dequantize(w: Int8Weight) -> torch.Tensor:
    """The float32 matrix the int8 values stand for."""
    return w.q.float() * w.scale[:, None]  # [out, in]


ALIGN = 64  # bytes: torch's int8 kernel crashes on inputs that start off such a boundary (torch 2.13, CPU)


def _aligned(t: torch.Tensor) -> torch.Tensor:
    """t, or a copy of it that starts on an ALIGN-byte boundary, as every freshly allocated tensor does."""
    return t if t.data_ptr() % ALIGN == 0 else t.clone()


def int8_linear(x: torch.Tensor, w: Int8Weight) -> torch.Tensor:
    """x @ dequantize(w).T without dequantizing: torch's int8 weight-only kernel reads each int8 once."""
    # x [seq, in], w.q [out, in], w.scale [out] (the kernel wants them in x's dtype)
    if x.device.type != "cpu":  # the kernel is the CPU's: elsewhere the product with q in x's dtype, then the scales
        return F.linear(x, w.q.to(x.dtype)) * w.scale.to(x.dtype)  # [seq, out]
    return torch._weight_int8pack_mm(_aligned(x.contiguous()), _aligned(w.q), w.scale.to(x.dtype))  # [seq, out]


def is_quantized(name: str) -> bool:
    """Every matrix a token is multiplied by; not the embedding table (a lookup) or the norms (vectors)."""
    return name.endswith(".weight") and not name.endswith("norm.weight") and name != "tok_embeddings.weight"


def forward(tokens: torch.Tensor, weights: dict, args: ModelArgs, cache=None, start_pos: int = 0) -> torch.Tensor:
    """The forward of exercise 11 with every projection through int8_linear; logits in float32."""
    seqlen = tokens.shape[0]  # tokens [seq]
    h = embed(tokens, weights["tok_embeddings.weight"])  # [seq, dim]
    freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + seqlen, args.rope_theta, args.rope_scale_factor,
                                     device=tokens.device)[start_pos:]  # [seq, head_dim // 2]
    mask = causal_mask(seqlen, start_pos, device=tokens.device) if seqlen > 1 else None  # [seq, start_pos + seq]
    for layer_id in range(args.n_layers):
        p = f"layers.{layer_id}."
        x = rms_norm(h, weights[p + "attention_norm.weight"], args.norm_eps)
        q = int8_linear(x, weights[p + "attention.wq.weight"]).view(seqlen, args.n_heads, args.head_dim)
        k = int8_linear(x, weights[p + "attention.wk.weight"]).view(seqlen, args.n_kv_heads, args.head_dim)
        v = int8_linear(x, weights[p + "attention.wv.weight"]).view(seqlen, args.n_kv_heads, args.head_dim)
        q, k = apply_rope(q, freqs_cis), apply_rope(k, freqs_cis)
        if cache is not None:
            k, v = cache.update(layer_id, start_pos, k, v)  # [start_pos + seq, n_kv_heads, head_dim] x 2
        h = h + int8_linear(grouped_query_attention(q, k, v, mask), weights[p + "attention.wo.weight"])  # [seq, dim]
        x = rms_norm(h, weights[p + "ffn_norm.weight"], args.norm_eps)
        gate = F.silu(int8_linear(x, weights[p + "feed_forward.w1.weight"]))  # [seq, hidden_dim]
        up = int8_linear(x, weights[p + "feed_forward.w3.weight"])  # [seq, hidden_dim]
        h = h + int8_linear(gate * up, weights[p + "feed_forward.w2.weight"])  # [seq, dim]
    h = rms_norm(h, weights["norm.weight"], args.norm_eps)
    return int8_linear(h, weights["output.weight"]).float()  # [seq, vocab_size]
