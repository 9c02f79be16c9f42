"""Exercise 10, reference: one pre-norm transformer block."""

import torch

from .ex02_checkpoint import ModelArgs
from .ex04_rms_norm import rms_norm
from .ex08_multi_head_attention import self_attention
from .ex09_feed_forward import feed_forward


def transformer_block(
    x: torch.Tensor,
    weights: dict[str, torch.Tensor],
    layer_id: int,
    args: ModelArgs,
    freqs_cis: torch.Tensor,
    mask: torch.Tensor | None,
    cache=None,
    start_pos: int = 0,
) -> torch.Tensor:
    """h = x + attention(norm(x)); out = h + feed_forward(norm(h))."""
    p = f"layers.{layer_id}."
    # x [seq, dim]
    normed = rms_norm(x, weights[p + "attention_norm.weight"], args.norm_eps)
    h = x + self_attention(normed, weights, layer_id, args, freqs_cis, mask, cache, start_pos)  # [seq, dim]
    normed = rms_norm(h, weights[p + "ffn_norm.weight"], args.norm_eps)
    ffn = feed_forward(
        normed, weights[p + "feed_forward.w1.weight"], weights[p + "feed_forward.w2.weight"],
        weights[p + "feed_forward.w3.weight"]
    )
    return h + ffn  # [seq, dim]
