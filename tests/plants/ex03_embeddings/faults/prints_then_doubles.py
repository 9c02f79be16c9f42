"""embed prints 15000 lines and returns twice the rows: the failure's captured output is capped."""


def embed(tokens, tok_embeddings):
    for i in range(15000):
        print("row", i)
    return tok_embeddings[tokens] * 2
