"""Exercise 11, reference: the whole forward pass, and generation without a cache."""

from collections.abc import Iterator

import torch

from .ex02_checkpoint import ModelArgs
from .ex03_embeddings import embed
from .ex04_rms_norm import rms_norm
from .ex05_qkv import linear
from .ex06_rope import precompute_freqs_cis
from .ex07_attention import causal_mask
from .ex10_transformer_block import transformer_block


def forward(
    tokens: torch.Tensor, weights: dict[str, torch.Tensor], args: ModelArgs, cache=None, start_pos: int = 0
) -> torch.Tensor:
    """Logits in float32 for every position of tokens, which sit at positions start_pos.. of the sequence."""
    seqlen = tokens.shape[0]  # tokens [seq]
    h = embed(tokens, weights["tok_embeddings.weight"])  # [seq, dim]
    freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + seqlen, args.rope_theta, args.rope_scale_factor,
                                     device=tokens.device)
    freqs_cis = freqs_cis[start_pos:]  # [seq, head_dim // 2]
    mask = causal_mask(seqlen, start_pos, device=tokens.device) if seqlen > 1 else None  # [seq, start_pos + seq]
    for layer_id in range(args.n_layers):
        h = transformer_block(h, weights, layer_id, args, freqs_cis, mask, cache, start_pos)  # [seq, dim]
    h = rms_norm(h, weights["norm.weight"], args.norm_eps)
    return linear(h, weights["output.weight"]).float()  # [seq, vocab_size]


def next_token(logits: torch.Tensor) -> int:
    """Greedy choice: the id with the largest logit at the last position."""
    return int(logits[-1].argmax())  # logits [seq, vocab_size]


def generate_uncached(
    prompt_ids: list[int], weights: dict[str, torch.Tensor], args: ModelArgs, max_new_tokens: int, stop_tokens=()
) -> Iterator[tuple[int, torch.Tensor]]:
    """Greedy generation that re-runs the whole sequence for every new token; yields (token, logits)."""
    ids, device = list(prompt_ids), weights["tok_embeddings.weight"].device
    for _ in range(max_new_tokens):
        logits = forward(torch.tensor(ids, device=device), weights, args)[-1]  # [vocab_size]
        token = int(logits.argmax())
        if token in stop_tokens:
            return
        yield token, logits
        ids.append(token)
