"""Exercise 3, reference: token ids to vectors."""

import torch


def embed(tokens: torch.Tensor, tok_embeddings: torch.Tensor) -> torch.Tensor:
    """Look up one row of the embedding table per token."""
    # tokens [seq] int64, tok_embeddings [vocab_size, dim]
    return tok_embeddings[tokens]  # [seq, dim]
