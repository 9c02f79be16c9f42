"""Exercise 15, reference: the notebooks' experiments: attention maps, the prediction from every position, the same
without the causal mask, and RoPE's rotation of pairs."""

import math

import torch

from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex05_qkv import linear, project_qkv
from .ex06_rope import apply_rope, precompute_freqs_cis
from .ex07_attention import causal_mask
from .ex08_multi_head_attention import repeat_kv
from .ex10_transformer_block import transformer_block


def attention_probs(tokens: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs,
                    layer_id: int) -> torch.Tensor:
    """The softmax weights of every head of layer layer_id over the prompt: [n_heads, seq, seq], float32, rows sum to
    1."""
    seqlen = tokens.shape[0]  # tokens [seq]
    freqs_cis = precompute_freqs_cis(args.head_dim, seqlen, args.rope_theta, args.rope_scale_factor,
                                     device=tokens.device)  # [seq, head_dim // 2]
    mask = causal_mask(seqlen).to(tokens.device)  # [seq, seq]
    h = embed(tokens, weights["tok_embeddings.weight"])  # [seq, dim]
    for i in range(layer_id):
        h = transformer_block(h, weights, i, args, freqs_cis, mask)  # [seq, dim]: the input of layer layer_id
    p = f"layers.{layer_id}."
    x = rms_norm(h, weights[p + "attention_norm.weight"], args.norm_eps)
    q, k, _ = project_qkv(x, weights[p + "attention.wq.weight"], weights[p + "attention.wk.weight"],
                          weights[p + "attention.wv.weight"],
                          args.n_heads, args.n_kv_heads)  # [seq, n_heads, head_dim], [seq, n_kv_heads, head_dim]
    q, k = apply_rope(q, freqs_cis), repeat_kv(apply_rope(k, freqs_cis), args.n_rep)  # [seq, n_heads, head_dim] x 2
    # [n_heads, seq, seq]
    scores = q.transpose(0, 1).float() @ k.transpose(0, 1).float().transpose(-2, -1) / math.sqrt(args.head_dim)
    return torch.softmax(scores + mask, dim=-1)  # [n_heads, seq, seq]


def forward_unmasked(tokens: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs) -> torch.Tensor:
    """The forward of exercise 11 with no causal mask: every position sees every other. Logits [seq, vocab_size],
    float32."""
    seqlen = tokens.shape[0]  # tokens [seq]
    freqs_cis = precompute_freqs_cis(args.head_dim, seqlen, args.rope_theta, args.rope_scale_factor,
                                     device=tokens.device)  # [seq, head_dim // 2]
    h = embed(tokens, weights["tok_embeddings.weight"])  # [seq, dim]
    for layer_id in range(args.n_layers):
        h = transformer_block(h, weights, layer_id, args, freqs_cis, None)  # [seq, dim]
    h = rms_norm(h, weights["norm.weight"], args.norm_eps)
    return linear(h, weights["output.weight"]).float()  # [seq, vocab_size]


def top_predictions(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most likely next tokens after every position: (probabilities [seq, k] float32, descending; ids
    [seq, k])."""
    probs = torch.softmax(logits.float(), dim=-1)  # [seq, vocab_size]
    top = probs.topk(k, dim=-1)  # values and indices [seq, k]
    return top.values, top.indices


def rope_rotation(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """One head vector x [head_dim] rotated by RoPE to every position of freqs_cis [end, head_dim // 2], as the 2-D
    points of its pairs: [end, head_dim // 2, 2] (pair i of position t is (x_2i, x_2i+1) turned by t * f_i)."""
    end = freqs_cis.shape[0]
    at_every_position = x.expand(end, 1, x.shape[-1])  # [end, 1, head_dim]: the same vector at positions 0 .. end - 1
    rotated = apply_rope(at_every_position, freqs_cis)  # [end, 1, head_dim]
    return rotated[:, 0].reshape(end, -1, 2).float()  # [end, head_dim // 2, 2]
