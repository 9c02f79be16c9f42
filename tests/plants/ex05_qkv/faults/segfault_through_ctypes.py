"""linear reads address 0 through ctypes: a segmentation fault, named with the learner's line."""

import ctypes


def linear(x, weight):
    ctypes.string_at(0)
    return x @ weight.T
