"""forward passes the cache to each block but not start_pos: every chunk is written at position 0."""

from solutions.ex11_forward import causal_mask, embed, linear, precompute_freqs_cis, rms_norm, transformer_block

FAILURE_SAYS = "pass start_pos on unchanged"


def forward(tokens, weights, args, cache=None, start_pos=0):
    seqlen = tokens.shape[0]
    h = embed(tokens, weights["tok_embeddings.weight"])
    freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + seqlen, args.rope_theta, args.rope_scale_factor)
    freqs_cis = freqs_cis[start_pos:]
    mask = causal_mask(seqlen, start_pos) if seqlen > 1 else None
    for layer_id in range(args.n_layers):
        h = transformer_block(h, weights, layer_id, args, freqs_cis, mask, cache)
    return linear(rms_norm(h, weights["norm.weight"], args.norm_eps), weights["output.weight"]).float()
