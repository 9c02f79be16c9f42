"""feed_forward never returns: the time limit ends one test, and the function's other tests fail at once."""


def feed_forward(x, w1, w2, w3):
    while True:
        pass
