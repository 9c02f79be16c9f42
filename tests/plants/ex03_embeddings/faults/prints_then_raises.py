"""embed prints 15000 lines, then raises ValueError: the failure shows the learner's line, without a traceback or
the printed flood."""


def embed(tokens, tok_embeddings):
    for i in range(15000):
        print("row", i)
    raise ValueError("I give up on purpose")
