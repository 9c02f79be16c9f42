"""The rows are looked up, then cast to float32: the embeddings must keep the table's dtype (bf16)."""

FAILURE_SAYS = "out: dtype float32, expected bfloat16"


def embed(tokens, tok_embeddings):
    return tok_embeddings[tokens].float()
