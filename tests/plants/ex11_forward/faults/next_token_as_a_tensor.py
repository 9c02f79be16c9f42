"""next_token returns the argmax as a 0-d tensor where a Python int is expected."""


def next_token(logits):
    return logits[-1].argmax()
