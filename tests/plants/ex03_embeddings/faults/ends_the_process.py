"""embed ends the whole process with os._exit(3): its test fails, saying so, and the other tests are graded."""

import os


def embed(tokens, tok_embeddings):
    os._exit(3)
