"""RoPE's angles always for positions 0 .. seqlen - 1: a chunk after start_pos is rotated as if it came first."""

from solutions.ex11_forward import causal_mask, embed, linear, precompute_freqs_cis, rms_norm, transformer_block

FAILURE_SAYS = "positions restart at 0"


def forward(tokens, weights, args, cache=None, start_pos=0):
    seqlen = tokens.shape[0]
    h = embed(tokens, weights["tok_embeddings.weight"])
    freqs_cis = precompute_freqs_cis(args.head_dim, seqlen, args.rope_theta, args.rope_scale_factor)
    mask = causal_mask(seqlen, start_pos) if seqlen > 1 else None
    for layer_id in range(args.n_layers):
        h = transformer_block(h, weights, layer_id, args, freqs_cis, mask, cache, start_pos)
    return linear(rms_norm(h, weights["norm.weight"], args.norm_eps), weights["output.weight"]).float()
