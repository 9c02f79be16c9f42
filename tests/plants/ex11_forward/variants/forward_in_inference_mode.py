"""forward under torch.inference_mode, with RoPE's table for max_seq_len sliced per call; next_token by .item()."""

import torch

from solutions.ex11_forward import causal_mask, embed, precompute_freqs_cis, rms_norm, transformer_block


@torch.inference_mode()
def forward(tokens, weights, args, cache=None, start_pos=0):
    seqlen = tokens.shape[0]
    h = embed(tokens, weights["tok_embeddings.weight"])
    freqs_cis = precompute_freqs_cis(args.head_dim, args.max_seq_len, args.rope_theta, args.rope_scale_factor)
    mask = None if seqlen == 1 else causal_mask(seqlen, start_pos)
    for layer_id in range(args.n_layers):
        h = transformer_block(h, weights, layer_id, args, freqs_cis[start_pos:start_pos + seqlen], mask, cache,
                              start_pos)
    return (rms_norm(h, weights["norm.weight"], args.norm_eps) @ weights["output.weight"].T).float()


def next_token(logits):
    return logits[-1].argmax().item()
