"""The FFN size rounded to the nearest multiple of multiple_of instead of up."""

FAILURE_SAYS = "ffn_hidden_dim (tiny-llama3, rounds_up)"


def ffn_hidden_dim(dim, multiple_of, ffn_dim_multiplier):
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * round(hidden / multiple_of)
