"""attention loops forever inside one C call, which the time limit's signal cannot interrupt: its process is
stopped, and the function's other tests fail at once."""

import itertools


def attention(q, k, v, mask):
    any(itertools.repeat(False))
    return v
